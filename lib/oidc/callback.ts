import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { causedByStoreOutage, errorResponse, escapeHtml, wantsHtml } from '../http/responses.ts';
import { log } from '../log.ts';
import { limitSignIn } from '../ops/rate-limit.ts';
import { metrics } from '../ops/metrics.ts';
import { originOf } from '../security/session-anomaly.ts';
import { newSessionId, writeSession } from '../session/manager.ts';
import { parseCookies } from '../http/cookies.ts';
import { familyNames, presentNames, SessionTooLargeError } from '../session/codec.ts';
import { sessionCookieName } from '../session/cookie.ts';
import { sessionHandle, type Session } from '../session/session.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { keepIdTokenHint } from '../session/storage-hint.ts';
import { indexSession } from '../session/session-index.ts';
import { endTransaction, findTransaction, type LoginTransaction } from '../session/transactions.ts';
import { getProvider, isInvalidGrant, providerErrorCode } from './provider.ts';
import { tokenFromResponse } from './tokens.ts';
import { adoptProver, dpopTokenKey, newSessionKey, proverForKey, routesNeedDPoP } from './dpop.ts';
import { userWithUserInfo } from './userinfo.ts';

/**
 * `GET /auth/callback`: finishes a sign-in as a pipeline of named checks. Each step
 * either passes or throws a `BrokerError`; the first two run before the token endpoint
 * is ever called, so a forged or replayed callback costs the provider nothing.
 *   1. state  — the browser holds the transaction this `state` names (CSRF, RFC 6749 §10.12)
 *   2. iss    — the response comes from our issuer (mix-up attacks, RFC 9207)
 *   3. error  — the provider did not answer with an error such as access_denied
 *   4. code   — exchange with PKCE; the ID token's signature, audience and nonce are checked
 *   5. session — the cookie is written and the browser sent to `returnTo`
 */
export async function handleCallback(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  // First, before any unseal or provider call (AUDIT.md M10); shares /auth/login's budget.
  await limitSignIn(request, config);
  const query = new URL(request.url).searchParams;
  const state = query.get('state') ?? '';
  let tx: LoginTransaction;
  try {
    tx = await checkState(request, state, config);
  } catch (error) {
    // A browser gets the readable page for this failure too, not bare JSON.
    return failure(request, error);
  }
  // From here on the transaction is spent, whatever happens.
  const clearTx = endTransaction(state, config);
  try {
    const provider = await getProvider(config);
    checkIssuer(query, provider);
    checkProviderError(query);
    const { session, idToken } = await exchangeCode(query, tx, provider, config);
    // The baseline of stolen-session detection, sealed with the rest (session-anomaly.ts).
    session.signedInFrom = originOf(request, config);
    // The browser sends no SameSite=Strict session cookie on the provider's cross-site
    // redirect here, so which session cookies it holds is unknown: every name of the
    // family not written now is expired, or a stale `cloakroom` would shadow new chunks
    // (readChunked prefers it) and a stale chunk would corrupt a shorter chunked seal.
    const name = sessionCookieName(config);
    // Plus any older, larger family the request does carry (a Lax cookie, a same-site provider).
    const present = familyNames(name, config.cookieMaxBytes, presentNames(parseCookies(request.headers.get('cookie')), name));
    const cookies = await sessionCookies(session, present, config, store);
    const headers = new Headers({ location: `${config.appOrigin}${tx.returnTo}`, 'cache-control': 'no-store' });
    headers.append('set-cookie', clearTx);
    for (const cookie of cookies) headers.append('set-cookie', cookie);
    await keepIdTokenHint(store, config, session, idToken);
    // The user's session list (GET /auth/sessions) and what lets another session end this one.
    await indexSession(store, config, session, request);
    metrics.sessionsStarted.inc();
    log.info('sign_in', { session: sessionHandle(session) });
    return new Response(null, { status: 303, headers });
  } catch (error) {
    return failure(request, error, [['set-cookie', clearTx]]);
  }
}

/**
 * The new session's cookies, or a clear refusal when the session cannot fit the cookie
 * budget: a cookie family the server in front refuses would lock the browser out of the
 * whole origin (AUDIT.md M2), so none is written.
 */
async function sessionCookies(session: Session, present: readonly string[], config: Config, store: KeyValueStore): Promise<string[]> {
  try {
    return await writeSession(session, present, config, { store });
  } catch (error) {
    if (!(error instanceof SessionTooLargeError)) throw error;
    throw new BrokerError('invalid_request', {
      publicMessage:
        `This sign-in's session needs ${error.bytes} bytes of cookies, more than SESSION_COOKIE_MAX_BYTES (${error.budget}) allows. ` +
        'The operator can set SESSION_STORAGE=server to keep sessions in the store, or raise SESSION_COOKIE_MAX_BYTES as far as the proxies in front accept.',
      cause: error,
    });
  }
}

/** Answers a failed callback with a readable page for a browser, JSON otherwise; never a redirect. */
export function failure(request: Request, error: unknown, headers: Array<[string, string]> = []): Response {
  // The store could not be reached (server-side session, ID-token hint): not a failed
  // sign-in but an outage, 503 store_unavailable for a browser as for a script.
  if (causedByStoreOutage(error)) return errorResponse(error, headers);
  const broker = error instanceof BrokerError ? error : new BrokerError('invalid_request', { cause: error });
  log.warn('sign_in_failed', { error: broker.code, reason: broker.publicMessage });
  if (!wantsHtml(request)) return errorResponse(broker, headers);
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}a{color:#2457c5}</style></head>
<body><h1>Sign-in failed</h1><p>${escapeHtml(broker.publicMessage ?? 'The sign-in could not be completed.')}</p>
<p><a href="/auth/login">Try again</a> or go back to the <a href="/">start page</a>.</p></body></html>`;
  const h = new Headers({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  for (const [name, value] of headers) h.append(name, value);
  return new Response(page, { status: broker.status, headers: h });
}

async function checkState(request: Request, state: string, config: Config): Promise<LoginTransaction> {
  const tx = state ? await findTransaction(request, state, config) : undefined;
  if (!tx) {
    throw new BrokerError('invalid_request', {
      publicMessage: 'This sign-in link is unknown, expired or already used.',
    });
  }
  return tx;
}

function checkIssuer(query: URLSearchParams, provider: client.Configuration): void {
  const metadata = provider.serverMetadata();
  const iss = query.get('iss');
  // RFC 9207 §2.4: required when the provider advertises it; must match whenever present.
  if (iss === null && metadata.authorization_response_iss_parameter_supported) {
    throw new BrokerError('invalid_request', { publicMessage: 'The sign-in response names no issuer.' });
  }
  if (iss !== null && iss !== metadata.issuer) {
    throw new BrokerError('invalid_request', { publicMessage: 'The sign-in response comes from another issuer.' });
  }
}

function checkProviderError(query: URLSearchParams): void {
  const error = query.get('error');
  if (error === null) return;
  const code = /^[a-z_]{1,64}$/.test(error) ? error : 'error';
  throw new BrokerError('invalid_request', {
    publicMessage: code === 'access_denied' ? 'Sign-in was cancelled or denied.' : `The identity provider refused the sign-in (${code}).`,
  });
}

async function exchangeCode(
  query: URLSearchParams,
  tx: LoginTransaction,
  provider: client.Configuration,
  config: Config,
): Promise<{ session: Session; idToken: string | undefined }> {
  // openid-client takes redirect_uri from this URL: build it from configuration, never
  // from the request's Host.
  const currentUrl = new URL(`${config.redirectUri}?${query.toString()}`);
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  // RFC 9449 §10: the code was bound to this key (`dpop_jkt`); the exchange proves it.
  const prover = tx.dpopKey ? await proverForKey(tx.dpopKey, config) : undefined;
  try {
    tokens = await client.authorizationCodeGrant(
      provider,
      currentUrl,
      {
        pkceCodeVerifier: tx.codeVerifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      },
      undefined,
      prover ? { DPoP: prover.handle } : undefined,
    );
  } catch (error) {
    const code = providerErrorCode(error);
    if (code || isInvalidGrant(error) || error instanceof client.ClientError) {
      throw new BrokerError('invalid_request', {
        publicMessage: code ? `The identity provider refused the sign-in (${code}).` : 'The sign-in response could not be verified.',
        cause: error,
      });
    }
    throw new BrokerError('idp_unavailable', { cause: error });
  }
  const claims = tokens.claims();
  if (!claims) throw new BrokerError('invalid_request', { publicMessage: 'The identity provider sent no ID token.' });
  const now = Date.now();
  const bound = prover !== undefined && tokens.token_type.toLowerCase() === 'dpop';
  const session: Session = {
    v: 1,
    id: newSessionId(),
    iss: claims.iss,
    sub: claims.sub,
    idpSid: typeof claims.sid === 'string' ? claims.sid : undefined,
    // OIDC Core §5.4: name and email may come from UserInfo alone.
    user: await userWithUserInfo(provider, tokens.access_token, claims, config.oidc.scopes, bound ? prover?.handle : undefined),
    refreshToken: tokens.refresh_token,
    // A DPoP-bound sign-in token goes to its own slot: never sent as Bearer (lib/oidc/dpop.ts).
    tokens: { [bound ? dpopTokenKey(undefined) : '']: tokenFromResponse(tokens, now, config.tokens.refreshSkew) },
    createdAt: now,
    touchedAt: now,
  };
  // RFC 9449: the key the session's DPoP-bound tokens will be bound to (lib/oidc/dpop.ts).
  if (tx.dpopKey) {
    session.dpopKey = tx.dpopKey;
    if (prover) adoptProver(session, prover);
  } else if (routesNeedDPoP(config)) {
    session.dpopKey = await newSessionKey();
  }
  // The ID token is not part of the session: its claims were checked and the few shown
  // copied; only a logout hint may keep it, server-side (see storage-hint.ts).
  return { session, idToken: tokens.id_token };
}
