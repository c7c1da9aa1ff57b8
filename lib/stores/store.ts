/**
 * The one small interface behind which the broker keeps the state that stateless
 * cookies cannot carry: ended sessions, back-channel logouts, refresh outcomes and
 * refresh locks. Values are strings; a store that leaves this process (Redis) only ever
 * receives hashed keys and sealed values, never a token in the clear.
 */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  /** Several keys in one round trip (the revocation check reads three per request). */
  getMany(keys: readonly string[]): Promise<Array<string | undefined>>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Sets only when absent; true when this call set it (a lock). */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  delete(key: string): Promise<void>;
}
