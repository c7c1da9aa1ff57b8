/**
 * The one small interface behind which the broker keeps the state that stateless
 * cookies cannot carry: ended sessions, back-channel logouts, refresh records and
 * refresh locks. Values are strings; a store that leaves this process (Redis) only ever
 * receives keyed hashes as keys (`keys.ts`) and sealed values, never a token or a user
 * identifier in the clear.
 *
 * Every operation may reject with a `StoreUnavailableError` when a shared store cannot
 * be reached in time; callers turn that into `503 store_unavailable` and never treat it
 * as "absent" (an unreachable store must not read as "nobody logged out").
 */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  /** Several keys in one round trip (the revocation check reads several per request). */
  getMany(keys: readonly string[]): Promise<Array<string | undefined>>;
  /**
   * `getMany` for the revocation check on every API call, which may answer from a local
   * cache that the store keeps coherent: invalidated when any instance writes one of the
   * keys, flushed when the store's connection drops (so an unreachable store still
   * rejects, never answers a stale "not revoked"), and no entry older than a second
   * (Redis: client-side caching, `redis.ts`). A store without it is read with `getMany`.
   */
  getManyCached?(keys: readonly string[]): Promise<Array<string | undefined>>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Sets only when absent; true when this call set it (a lock: `SET NX PX`). */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /**
   * Replaces the value only while it still equals `expected` (`undefined`: only while the
   * key is absent); true when this call wrote. A fence for records written under a lock
   * whose lease may have been lost: a writer that lost it cannot overwrite a newer record.
   */
  compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds: number): Promise<boolean>;
  /** Extends the key's lifetime only while its value equals `expected` (a lock owner renewing its lease). */
  extendIfEquals(key: string, expected: string, ttlSeconds: number): Promise<boolean>;
  /** Deletes only while the value equals `expected` (a lock owner releasing its own lock, never another's). */
  deleteIfEquals(key: string, expected: string): Promise<boolean>;
  delete(key: string): Promise<void>;
}

/** The shared store did not answer in time or is disconnected. */
export class StoreUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('the shared store is unavailable', options);
    this.name = 'StoreUnavailableError';
  }
}
