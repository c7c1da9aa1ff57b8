import type { DPoPPrivateJwk } from '../oidc/dpop.ts';
import type { Config } from '../config/load.ts';
import { parseCookies, serializeCookie } from '../http/cookies.ts';
import { seal, unseal } from './codec.ts';
import { transactionCookieAttributes, transactionCookiePrefix } from './cookie.ts';

/**
 * Login transactions: what the callback needs to finish a sign-in (PKCE verifier,
 * nonce, returnTo). One sealed cookie per transaction, named after its `state`, so that
 * sign-ins started in several tabs do not overwrite each other.
 */
export interface LoginTransaction {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
  /** Epoch milliseconds. */
  createdAt: number;
  /** RFC 9449 §10: the new session's DPoP key, whose thumbprint the authorization request named (`dpop_jkt`). */
  dpopKey?: DPoPPrivateJwk;
}

/** A sign-in must finish within ten minutes; after that its cookie is gone. */
const TRANSACTION_TTL_SECONDS = 600;
/**
 * Abandoned sign-ins must not grow the Cookie header without bound (servers refuse
 * headers past 8 KB); each is ~450 bytes, so five stay near 2.3 KB.
 */
const MAX_TRANSACTIONS = 5;

const STATE = /^[A-Za-z0-9_-]{16,128}$/;

function cookieName(config: Config, state: string): string {
  return `${transactionCookiePrefix(config)}${state}`;
}

/**
 * Set-Cookie values that add `tx` and, when the browser already holds the maximum,
 * expire the oldest transactions to make room.
 */
export async function startTransaction(request: Request, tx: LoginTransaction, config: Config): Promise<string[]> {
  const prefix = transactionCookiePrefix(config);
  const existing: Array<{ name: string; createdAt: number }> = [];
  for (const [name, value] of parseCookies(request.headers.get('cookie'))) {
    if (!name.startsWith(prefix)) continue;
    const opened = await unseal<LoginTransaction>(value, config.session, TRANSACTION_TTL_SECONDS);
    // An unreadable one is the first to go.
    existing.push({ name, createdAt: 'data' in opened ? opened.data.createdAt : 0 });
  }
  existing.sort((a, b) => a.createdAt - b.createdAt);
  const expire = existing.slice(0, Math.max(0, existing.length - (MAX_TRANSACTIONS - 1)));
  const headers = expire.map(({ name }) => serializeCookie(name, '', transactionCookieAttributes(config, 0)));
  const sealed = await seal(tx, config.session, TRANSACTION_TTL_SECONDS);
  headers.push(serializeCookie(cookieName(config, tx.state), sealed, transactionCookieAttributes(config, TRANSACTION_TTL_SECONDS)));
  return headers;
}

/** The transaction `state` names, if the browser holds it and it is intact and unexpired. */
export async function findTransaction(request: Request, state: string, config: Config): Promise<LoginTransaction | undefined> {
  if (!STATE.test(state)) return undefined;
  const sealed = parseCookies(request.headers.get('cookie')).get(cookieName(config, state));
  if (!sealed) return undefined;
  const opened = await unseal<LoginTransaction>(sealed, config.session, TRANSACTION_TTL_SECONDS);
  if (!('data' in opened)) return undefined;
  // The state is bound inside the seal too: a cookie renamed to another state is refused.
  if (opened.data.state !== state) return undefined;
  if (Date.now() - opened.data.createdAt > TRANSACTION_TTL_SECONDS * 1000) return undefined;
  return opened.data;
}

/** A transaction is single-use: the callback deletes it whatever the outcome. */
export function endTransaction(state: string, config: Config): string {
  return serializeCookie(cookieName(config, state), '', transactionCookieAttributes(config, 0));
}
