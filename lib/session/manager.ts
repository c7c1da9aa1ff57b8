import { randomBytes } from 'node:crypto';
import { ConfigError, type Config } from '../config/load.ts';
import { parseCookies } from '../http/cookies.ts';
import { log } from '../log.ts';
import { getStore } from '../stores/index.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { LRUCache } from 'lru-cache';
import {
  digest,
  expireAll,
  familyNames,
  presentBytes,
  presentNames,
  seal,
  SessionTooLargeError,
  unseal,
} from './codec.ts';
import { sessionStorage } from './storage.ts';
import { sessionCookieAttributes, sessionCookieName } from './cookie.ts';
import { countLapse } from './lapse-count.ts';
import { isSessionEnded } from './revocation.ts';
import { lastSeenDue, touchIndexedSession } from './session-index.ts';
import { sessionExpiresAt, touchIntervalMs, type AccessToken, type Session } from './session.ts';
import { UnsealCache, type Opened } from './unseal-cache.ts';

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
  /** What the family the browser sent takes in its Cookie header (the weight of a rewrite). */
  cookieBytes?: number;
}

/**
 * The unseal cache (see `unseal-cache.ts`: LRU for successes bounded by entries and
 * bytes, failures apart). It belongs to one configuration (its secrets); tests that
 * reconfigure start afresh.
 */
/** Decrypts and cache hits since start (the benchmark reports them). */
export const unsealStats = { unseals: 0, cacheHits: 0 };
let unsealCache = new UnsealCache<Session>(undefined, unsealStats);
let cacheConfig: Config | undefined;

function cachesFor(config: Config): void {
  if (cacheConfig === config) return;
  unsealCache = new UnsealCache<Session>(undefined, unsealStats);
  rewriteCache.clear();
  cacheConfig = config;
}

function unsealSession(sealed: string, key: string, config: Config): Promise<Opened<Session>> {
  cachesFor(config);
  return unsealCache.get(key, sealed.length, async () => {
    const opened = await unseal<Session>(sealed, config.session, config.session.absoluteTimeout);
    if ('failure' in opened) return opened;
    if (opened.data.v !== 1 || typeof opened.data.id !== 'string') return { failure: 'invalid' };
    return Object.freeze(opened.data);
  });
}

/**
 * The broker knows what it just sealed: the browser's next request with this cookie
 * finds it in the cache instead of paying a decrypt for the broker's own work.
 */
function rememberSealed(sealed: string, session: Session, config: Config): void {
  if (cacheConfig !== config) return;
  unsealCache.remember(digest(sealed), sealed.length, Object.freeze(session));
}

export async function loadSession(request: Request, config: Config, store: KeyValueStore): Promise<LoadedSession> {
  const cookies = parseCookies(request.headers.get('cookie'));
  const name = sessionCookieName(config);
  const present = presentNames(cookies, name);
  // A family over the budget (written before the budget existed, or under a larger one)
  // is rewritten within it at once, or cleared when unreadable: left alone it would lock
  // the browser out behind a proxy's header limit.
  const cookieBytes = presentBytes(cookies, present);
  const oversized = present.length > 0 && cookieBytes > config.cookieMaxBytes;
  const stored = await sessionStorage(config).read(cookies, config, store);
  if (!stored) return { session: undefined, present, reason: 'absent', needsWrite: false };
  if ('gone' in stored) return { session: undefined, present, reason: 'ended', needsWrite: false };
  if ('failure' in stored) {
    log.info('session_unreadable', { reason: stored.failure });
    return { session: undefined, present, reason: 'unreadable', needsWrite: false };
  }

  const key = digest(stored.sealed);
  const unsealed = await unsealSession(stored.sealed, key, config);
  if ('failure' in unsealed || (stored.expectedId !== undefined && unsealed.id !== stored.expectedId)) {
    log.info('session_unreadable', { reason: 'failure' in unsealed ? unsealed.failure : 'invalid' });
    return { session: undefined, present, reason: 'unreadable', needsWrite: false };
  }
  const now = Date.now();
  const lifetimes = config.session;
  if (now >= unsealed.createdAt + lifetimes.absoluteTimeout * 1000) {
    countLapse(store, config, unsealed, 'expired');
    return { session: undefined, present, reason: 'expired', needsWrite: false };
  }
  if (now >= unsealed.touchedAt + lifetimes.idleTimeout * 1000) {
    countLapse(store, config, unsealed, 'idle');
    return { session: undefined, present, reason: 'idle', needsWrite: false };
  }
  if (await isSessionEnded(store, config, unsealed)) {
    return { session: undefined, present, reason: 'ended', needsWrite: false };
  }
  const needsWrite = oversized || now - unsealed.touchedAt >= touchIntervalMs(lifetimes) || stored.olderSecret;
  return { session: unsealed, present, needsWrite, key, cookieBytes };
}

/**
 * Forgets a session where it is kept (the server-side record), so that a copy of its
 * cookie finds nothing. Revocation (`endSession`) is separate and covers both modes.
 */
export async function forgetSession(session: Session, config: Config, store: KeyValueStore): Promise<void> {
  await sessionStorage(config).remove(session, config, store);
}

export function newSessionId(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * What the cookie carries of a session: only what the broker needs (M2). The ID token
 * never (RP-initiated logout sends `client_id`, or a hint kept in the store); an access
 * token that has expired is useless, so it is dropped.
 */
export function cookiePayload(session: Session, now: number): Session {
  const rest: Session = { ...session };
  delete rest.idToken;
  const tokens: Record<string, AccessToken> = {};
  for (const [resource, token] of Object.entries(session.tokens)) if (token.expiresAt > now) tokens[resource] = token;
  return { ...rest, tokens };
}

export interface WriteOptions {
  /**
   * Over the budget, access tokens may be dropped to make room (they can be obtained
   * again with the refresh token): first every other resource's, then this one's. The
   * refresh token is never dropped. Without this, only expired tokens are dropped.
   */
  shrink?: { keepResource?: string };
  /** Where SESSION_STORAGE=server keeps the record. Default: the process's store. */
  store?: KeyValueStore;
}

/** The sessions to try in turn: as it is, then smaller (see `WriteOptions.shrink`). */
function candidates(session: Session, options: WriteOptions): Session[] {
  const list = [session];
  if (!options.shrink) return list;
  const keep = options.shrink.keepResource;
  const kept = keep !== undefined && session.tokens[keep] ? { [keep]: session.tokens[keep] } : {};
  if (Object.keys(kept).length < Object.keys(session.tokens).length) list.push({ ...session, tokens: kept });
  if (Object.keys(kept).length > 0) list.push({ ...session, tokens: {} });
  return list;
}

/**
 * Set-Cookie values for `session`, touched now, within SESSION_COOKIE_MAX_BYTES. Max-Age
 * runs to the absolute timeout; the server enforces the idle timeout itself from
 * `touchedAt` inside the seal. Throws `SessionTooLargeError` when it cannot fit.
 */
/**
 * The process store for best-effort metadata, or none when the process has no valid
 * environment configuration (a caller that built its own Config): a "last seen" touch
 * must never turn a cookie write into a failure.
 */
function processStoreIfConfigured(): KeyValueStore | undefined {
  try {
    return getStore();
  } catch (error) {
    if (error instanceof ConfigError) return undefined;
    throw error;
  }
}

export async function writeSession(session: Session, present: readonly string[], config: Config, options: WriteOptions = {}): Promise<string[]> {
  const now = Date.now();
  const touched: Session = { ...cookiePayload(session, now), touchedAt: now };
  const remaining = Math.ceil((touched.createdAt + config.session.absoluteTimeout * 1000 - now) / 1000);
  const attributes = sessionCookieAttributes(config, remaining);
  let lastError: unknown;
  const storage = sessionStorage(config);
  // Only server-side storage writes to the store; a cookie session needs none.
  const store = options.store ?? (config.sessionStorage === 'server' ? getStore() : undefined);
  for (const candidate of candidates(touched, options)) {
    const sealed = await seal(candidate, config.session, remaining);
    try {
      const cookies = await storage.save(candidate, sealed, remaining, attributes, present, config, store);
      if (candidate !== touched) {
        log.warn('session_tokens_dropped', { kept: Object.keys(candidate.tokens).length, had: Object.keys(touched.tokens).length });
      }
      rememberSealed(sealed, candidate, config);
      // The session list's "last seen", piggy-backing on this write (at most once per
      // interval). Not awaited: a stalled store must not hold the answer for metadata.
      // The process store is only reached for when a touch is due: most writes need none.
      if (lastSeenDue(session.touchedAt, now)) {
        const indexStore = store ?? processStoreIfConfigured();
        if (indexStore) void touchIndexedSession(indexStore, config, session, now);
      }
      return cookies;
    } catch (error) {
      if (!(error instanceof SessionTooLargeError)) throw error;
      lastError = error;
    }
  }
  const tooLarge = lastError as SessionTooLargeError;
  log.error('session_too_large', { bytes: tooLarge.bytes, budget: tooLarge.budget });
  throw tooLarge;
}

/**
 * `writeSession` for answers that must go out whatever happens (the proxy, after the API
 * answered): over the budget it drops access tokens, other resources' first, and keeps
 * the refresh token; it never throws. When even that cannot fit, no cookie is written
 * and the failure is logged: the answer itself is not lost to a 500.
 */
export async function writeSessionWithinBudget(
  session: Session,
  present: readonly string[],
  config: Config,
  keepResource?: string,
): Promise<string[]> {
  try {
    return await writeSession(session, present, config, { shrink: { keepResource } });
  } catch (error) {
    if (!(error instanceof SessionTooLargeError)) log.error('session_write_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
    return [];
  }
}

/**
 * The cookie of a session that only needs its idle activity recorded (or a re-seal under
 * the current secret, or within the budget). Concurrent and immediately following
 * requests that carry the same old cookie get the same new one, sealed once, instead of
 * one seal each. Bounded by entries and bytes, least recently used evicted first; only
 * live sessions reach it.
 */
const REWRITE_CACHE_TTL_MS = 10_000;
const rewriteCache = new LRUCache<string, Promise<string[]>>({ max: 10_000, maxSize: 16 * 1024 * 1024, ttl: REWRITE_CACHE_TTL_MS });

export function rewriteSession(loaded: LoadedSession, config: Config): Promise<string[]> {
  const { session, key } = loaded;
  if (!session || !key) return Promise.resolve([]);
  cachesFor(config);
  const hit = rewriteCache.get(key);
  if (hit) return hit;
  const cookies = writeSessionWithinBudget(session, loaded.present, config);
  // What the entry will weigh: the Set-Cookie values, about the cookies' size plus attributes.
  rewriteCache.set(key, cookies, { size: Math.min(config.cookieMaxBytes, loaded.cookieBytes ?? config.cookieMaxBytes) + 512 });
  return cookies;
}

/**
 * Expires the whole session cookie family, with the attributes it was set with: every
 * name the browser may hold, not only those this request carried — another answer may
 * have changed the family (chunked ⇄ single) while this request was on its way.
 */
export function clearSession(present: readonly string[], config: Config): string[] {
  return expireAll(familyNames(sessionCookieName(config), config.cookieMaxBytes, present), sessionCookieAttributes(config));
}

export { sessionExpiresAt };
