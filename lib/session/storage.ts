import type { Config } from '../config/load.ts';
import type { CookieAttributes } from '../http/cookies.ts';
import { storeKeys } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { digest, readChunked, seal, sealedWithOlderSecret, unseal, writeChunked, type UnsealFailure } from './codec.ts';
import { sessionCookieName } from './cookie.ts';
import type { Session } from './session.ts';
import { UnsealCache } from './unseal-cache.ts';

/**
 * The session repository: where a session's seal lives, behind one interface, so that
 * the rest of lib/ (proxy, session endpoint, callback, logout) never knows which
 * (SESSION_STORAGE):
 *  - `cookie` (default): the seal is the cookie family itself, chunked, within
 *    SESSION_COOKIE_MAX_BYTES;
 *  - `server`: the cookie carries only a sealed random handle (the session id, a few
 *    hundred bytes whatever the session holds); the session and its tokens live in the
 *    store, sealed, under a keyed hash of the handle, with a TTL that follows the idle and
 *    absolute timeouts. Logout deletes the record, so a copied cookie dies with it.
 * Sealing, lifetimes, revocation and the caches stay in manager.ts for both.
 */
export interface StoredSeal {
  /** The session's seal: the cookie itself, or the record the cookie's handle names. */
  sealed: string;
  /** Sealed (cookie or record) with a secret other than the current first one: re-seal. */
  olderSecret: boolean;
  /** The session id the seal must hold (server: the handle), else it is not this cookie's. */
  expectedId?: string;
}

export type ReadResult = StoredSeal | { failure: UnsealFailure } | { gone: true } | undefined;

export interface SessionStorage {
  /** The seal this request's cookies refer to; undefined when they refer to none. */
  read(cookies: Map<string, string>, config: Config, store: KeyValueStore): Promise<ReadResult>;
  /** Stores `sealed` (the seal of `session`) and answers the Set-Cookie values that refer to it. */
  save(
    session: Session,
    sealed: string,
    ttlSeconds: number,
    attributes: CookieAttributes,
    present: readonly string[],
    config: Config,
    /** Undefined for cookie storage, which keeps nothing in the store. */
    store: KeyValueStore | undefined,
  ): Promise<string[]>;
  /** Forgets the session where it is kept (server: the record; cookie: nothing to do). */
  remove(session: Session, config: Config, store: KeyValueStore): Promise<void>;
}

const cookieStorage: SessionStorage = {
  async read(cookies, config) {
    const sealed = readChunked(cookies, sessionCookieName(config));
    return sealed ? { sealed, olderSecret: sealedWithOlderSecret(sealed, config.session) } : undefined;
  },
  async save(_session, sealed, _ttl, attributes, present, config) {
    return writeChunked(sessionCookieName(config), sealed, attributes, present, config.cookieMaxBytes);
  },
  async remove() {},
};

/** The handle cookie's content. */
interface Handle {
  h: string;
}

/** Opened handle cookies, per configuration (its secrets); see unseal-cache.ts. */
const handleCaches = new WeakMap<Config, UnsealCache<Handle>>();
function handleCache(config: Config): UnsealCache<Handle> {
  let cache = handleCaches.get(config);
  if (!cache) {
    cache = new UnsealCache<Handle>();
    handleCaches.set(config, cache);
  }
  return cache;
}

/** The record's lifetime: until the idle timeout from now, never past the absolute one. */
function recordTtl(ttlSeconds: number, config: Config): number {
  return Math.max(1, Math.min(ttlSeconds, config.session.idleTimeout));
}

const serverStorage: SessionStorage = {
  async read(cookies, config, store) {
    const handleSeal = readChunked(cookies, sessionCookieName(config));
    if (!handleSeal) return undefined;
    const handle = await handleCache(config).get(digest(handleSeal), handleSeal.length, async () => {
      const opened = await unseal<Handle>(handleSeal, config.session, config.session.absoluteTimeout);
      if ('failure' in opened) return opened;
      return typeof opened.data.h === 'string' ? Object.freeze(opened.data) : { failure: 'invalid' };
    });
    if ('failure' in handle) return { failure: handle.failure as UnsealFailure };
    // A store that cannot answer throws here (503 store_unavailable): never "no session".
    const record = (await store.getMany(storeKeys(config, 'session', handle.h))).find((value) => value !== undefined);
    if (record === undefined) return { gone: true };
    return {
      sealed: record,
      olderSecret: sealedWithOlderSecret(handleSeal, config.session) || sealedWithOlderSecret(record, config.session),
      expectedId: handle.h,
    };
  },
  async save(session, sealed, ttlSeconds, attributes, present, config, store) {
    if (!store) throw new Error('SESSION_STORAGE=server writes the session to the store: none was given');
    const ttl = recordTtl(ttlSeconds, config);
    for (const key of storeKeys(config, 'session', session.id)) await store.set(key, sealed, ttl);
    const handleSeal = await seal({ h: session.id } satisfies Handle, config.session, ttlSeconds);
    return writeChunked(sessionCookieName(config), handleSeal, attributes, present, config.cookieMaxBytes);
  },
  async remove(session, config, store) {
    for (const key of storeKeys(config, 'session', session.id)) await store.delete(key);
  },
};

export function sessionStorage(config: Config): SessionStorage {
  return config.sessionStorage === 'server' ? serverStorage : cookieStorage;
}
