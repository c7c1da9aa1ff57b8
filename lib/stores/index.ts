import { getConfig } from '../config/load.ts';
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import type { KeyValueStore } from './store.ts';

export type { KeyValueStore } from './store.ts';
export { StoreUnavailableError } from './store.ts';

/**
 * The process's one store, anchored on `globalThis`: Next.js loads a module once per
 * bundle, and a store per module copy would split the state (a logout recorded by the
 * logout route's copy, unseen by the proxy's) and open one Redis connection per copy.
 */
const STORE_KEY = Symbol.for('cloakroom.store');
type Anchored = typeof globalThis & { [STORE_KEY]?: KeyValueStore };

/**
 * Redis when `REDIS_URL` or `REDIS_CLUSTER_NODES` is set: shared by every instance,
 * surviving restarts. Otherwise this process's memory, which serves one instance only
 * and forgets every logout when the process ends (README, "Many instances").
 */
export function getStore(): KeyValueStore {
  const anchored = globalThis as Anchored;
  if (!anchored[STORE_KEY]) {
    const { redis } = getConfig();
    if (redis.url || redis.clusterNodes.length > 0) {
      anchored[STORE_KEY] = new RedisStore({ url: redis.url, clusterNodes: redis.clusterNodes, keyPrefix: redis.keyPrefix });
    } else {
      // instrumentation.ts says once at start that this serves one instance only
      // (`store_in_process_memory`, lib/config/startup.ts).
      anchored[STORE_KEY] = new MemoryStore();
    }
  }
  return anchored[STORE_KEY];
}

export function setStoreForTests(replacement: KeyValueStore): void {
  (globalThis as Anchored)[STORE_KEY] = replacement;
}
