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
  /** A hash of the sealed value (cache key). */
  key?: string;
}

/**
 * A sealed value seen recently maps to its unsealed session, so that a page's burst of
 * API calls pays for one decrypt. Keyed by a hash of the seal; bounded; entries are
 * frozen. Revocation and lifetimes are still checked on every request, so the entry
 * may live as long as the cookie is in use: a hit extends it, and the first request
 * of a burst does the unseal that the others await (no stampede of decrypts when many
 * sessions' entries would otherwise expire together).
 */
const UNSEAL_CACHE_TTL_MS = 30_000;
const UNSEAL_CACHE_MAX = 10_000;
type Unsealed = Session | { failure: string };
const unsealCache = new Map<string, { result: Promise<Unsealed>; until: number }>();
/** The cache belongs to one configuration (its secrets); tests that reconfigure start afresh. */
let cacheConfig: Config | undefined;
export const unsealStats = { unseals: 0, cacheHits: 0 };

function unsealSession(sealed: string, key: string, config: Config): Promise<Unsealed> {
  if (cacheConfig !== config) {
    unsealCache.clear();
    rewriteCache.clear();
    cacheConfig = config;
  }
  const now = Date.now();
  const hit = unsealCache.get(key);
  if (hit && hit.until > now) {
    unsealStats.cacheHits++;
    if (hit.until - now < UNSEAL_CACHE_TTL_MS / 2) {
      // Refresh-on-use, and move to the end so that eviction drops the least recently used.
      unsealCache.delete(key);
      unsealCache.set(key, { result: hit.result, until: now + UNSEAL_CACHE_TTL_MS });
    }
    return hit.result;
  }
  unsealStats.unseals++;
  const result = unseal<Session>(sealed, config.session, config.session.absoluteTimeout).then((opened): Unsealed => {
    if ('failure' in opened) return opened;
    if (opened.data.v !== 1 || typeof opened.data.id !== 'string') return { failure: 'invalid' };
    return Object.freeze(opened.data);
  });
  if (unsealCache.size >= UNSEAL_CACHE_MAX) unsealCache.delete(unsealCache.keys().next().value as string);
  unsealCache.set(key, { result, until: now + UNSEAL_CACHE_TTL_MS });
  return result;
}

/**
 * The broker knows what it just sealed: the browser's next request with this cookie
 * finds it in the cache instead of paying a decrypt for the broker's own work.
 */
function rememberSealed(sealed: string, session: Session, config: Config): void {
  if (cacheConfig !== config) return;
  if (unsealCache.size >= UNSEAL_CACHE_MAX) unsealCache.delete(unsealCache.keys().next().value as string);
  unsealCache.set(digest(sealed), { result: Promise.resolve(Object.freeze(session)), until: Date.now() + UNSEAL_CACHE_TTL_MS });
}

export async function loadSession(request: Request, config: Config, store: KeyValueStore): Promise<LoadedSession> {
  const cookies = parseCookies(request.headers.get('cookie'));
  const name = sessionCookieName(config);
  const present = presentNames(cookies, name);
  const sealed = readChunked(cookies, name);
  if (!sealed) return { session: undefined, present, reason: 'absent', needsWrite: false };

  const key = digest(sealed);
  const unsealed = await unsealSession(sealed, key, config);
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
  if (await isSessionEnded(store, config, unsealed)) {
    return { session: undefined, present, reason: 'ended', needsWrite: false };
  }
  const needsWrite = now - unsealed.touchedAt >= touchIntervalMs(lifetimes) || sealedWithOlderSecret(sealed, config.session);
  return { session: unsealed, present, needsWrite, key };
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
  rememberSealed(sealed, touched, config);
  return writeChunked(sessionCookieName(config), sealed, sessionCookieAttributes(config, remaining), present);
}

/**
 * The cookie of a session that only needs its idle activity recorded (or a re-seal under
 * the current secret). Concurrent and immediately following requests that carry the same
 * old cookie get the same new one, sealed once, instead of one seal each.
 */
const REWRITE_CACHE_TTL_MS = 10_000;
const rewriteCache = new Map<string, { cookies: Promise<string[]>; until: number }>();

export function rewriteSession(loaded: LoadedSession, config: Config): Promise<string[]> {
  const { session, key } = loaded;
  if (!session || !key) return Promise.resolve([]);
  const now = Date.now();
  const hit = rewriteCache.get(key);
  if (hit && hit.until > now) return hit.cookies;
  if (rewriteCache.size >= UNSEAL_CACHE_MAX) rewriteCache.delete(rewriteCache.keys().next().value as string);
  const cookies = writeSession(session, loaded.present, config);
  rewriteCache.set(key, { cookies, until: now + REWRITE_CACHE_TTL_MS });
  return cookies;
}

/** Expires every session cookie the browser sent, with the attributes it was set with. */
export function clearSession(present: readonly string[], config: Config): string[] {
  const names = present.length > 0 ? present : [sessionCookieName(config)];
  return expireAll(names, sessionCookieAttributes(config));
}

export { sessionExpiresAt };
