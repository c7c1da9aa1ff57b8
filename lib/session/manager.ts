import { randomBytes } from 'node:crypto';
import type { Config } from '../config/load.ts';
import { parseCookies } from '../http/cookies.ts';
import { log } from '../log.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { digest, expireAll, presentNames, readChunked, seal, sealedWithOlderSecret, unseal, writeChunked } from './codec.ts';
import { sessionCookieAttributes, sessionCookieName } from './cookie.ts';
import { isSessionEnded } from './revocation.ts';
import { sessionExpiresAt, touchIntervalMs, type Session } from './session.ts';

/**
 * Reading and writing the session of a request. The order of checks is the order of
 * cost: parse, unseal (cached), lifetimes, then the store for revocation.
 */
export interface LoadedSession {
  /** The live session, or undefined. */
  session: Session | undefined;
  /** The session cookie names the browser sent (to rewrite or expire them all). */
  present: string[];
  /** Why there is no session, for logs and for clearing a dead cookie. */
  reason?: 'absent' | 'unreadable' | 'expired' | 'idle' | 'ended';
  /** The cookie should be written again: idle activity, or sealed with a retired secret. */
  needsWrite: boolean;
}

/**
 * A sealed value seen recently maps to its unsealed session, so that a page's burst of
 * API calls pays for one decrypt. Keyed by a hash of the seal; bounded; entries are
 * frozen and short-lived. Revocation and lifetimes are still checked on every request.
 */
const UNSEAL_CACHE_TTL_MS = 30_000;
const UNSEAL_CACHE_MAX = 10_000;
const unsealCache = new Map<string, { session: Session; until: number }>();
export const unsealStats = { unseals: 0, cacheHits: 0 };

async function unsealSession(sealed: string, config: Config): Promise<Session | { failure: string }> {
  const key = digest(sealed);
  const now = Date.now();
  const hit = unsealCache.get(key);
  if (hit && hit.until > now) {
    unsealStats.cacheHits++;
    return hit.session;
  }
  unsealStats.unseals++;
  const result = await unseal<Session>(sealed, config.session, config.session.absoluteTimeout);
  if ('failure' in result) return result;
  if (result.data.v !== 1 || typeof result.data.id !== 'string') return { failure: 'invalid' };
  const session = Object.freeze(result.data);
  if (unsealCache.size >= UNSEAL_CACHE_MAX) unsealCache.delete(unsealCache.keys().next().value as string);
  unsealCache.set(key, { session, until: now + UNSEAL_CACHE_TTL_MS });
  return session;
}

export async function loadSession(request: Request, config: Config, store: KeyValueStore): Promise<LoadedSession> {
  const cookies = parseCookies(request.headers.get('cookie'));
  const name = sessionCookieName(config);
  const present = presentNames(cookies, name);
  const sealed = readChunked(cookies, name);
  if (!sealed) return { session: undefined, present, reason: 'absent', needsWrite: false };

  const unsealed = await unsealSession(sealed, config);
  if ('failure' in unsealed) {
    log.info('session_unreadable', { reason: unsealed.failure });
    return { session: undefined, present, reason: 'unreadable', needsWrite: false };
  }
  const now = Date.now();
  const lifetimes = config.session;
  if (now >= unsealed.createdAt + lifetimes.absoluteTimeout * 1000) {
    return { session: undefined, present, reason: 'expired', needsWrite: false };
  }
  if (now >= unsealed.touchedAt + lifetimes.idleTimeout * 1000) {
    return { session: undefined, present, reason: 'idle', needsWrite: false };
  }
  if (await isSessionEnded(store, unsealed)) {
    return { session: undefined, present, reason: 'ended', needsWrite: false };
  }
  const needsWrite = now - unsealed.touchedAt >= touchIntervalMs(lifetimes) || sealedWithOlderSecret(sealed, config.session);
  return { session: unsealed, present, needsWrite };
}

export function newSessionId(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * Set-Cookie values for `session`, touched now. Max-Age runs to the absolute timeout;
 * the server enforces the idle timeout itself from `touchedAt` inside the seal.
 */
export async function writeSession(session: Session, present: readonly string[], config: Config): Promise<string[]> {
  const now = Date.now();
  const touched: Session = { ...session, touchedAt: now };
  const remaining = Math.ceil((touched.createdAt + config.session.absoluteTimeout * 1000 - now) / 1000);
  const sealed = await seal(touched, config.session, remaining);
  return writeChunked(sessionCookieName(config), sealed, sessionCookieAttributes(config, remaining), present);
}

/** Expires every session cookie the browser sent, with the attributes it was set with. */
export function clearSession(present: readonly string[], config: Config): string[] {
  const names = present.length > 0 ? present : [sessionCookieName(config)];
  return expireAll(names, sessionCookieAttributes(config));
}

export { sessionExpiresAt };
