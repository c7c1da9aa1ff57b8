/**
 * Broker "instances" in one test process, standing in for several processes that share
 * one store (until the Redis suite runs real ones). Each instance has its own store
 * client over the shared data — its own object, so in-process coordination keyed by the
 * store client (the refresh single-flight) is per instance, as it is per process in
 * production — and calls the broker's real handlers, Request in, Response out, with the
 * configured origin as the request URL. Module-level caches (configuration, discovery,
 * unseal cache) are still shared; nothing in them coordinates refreshes.
 */
import { getConfig } from '../../lib/config/load.ts';
import { errorResponse } from '../../lib/http/responses.ts';
import { handleProxy } from '../../lib/proxy/handler.ts';
import { handleSession } from '../../lib/session/endpoint.ts';
import type { KeyValueStore } from '../../lib/stores/store.ts';

/** One instance's client of a shared store: same data, its own identity. */
export class StoreClient implements KeyValueStore {
  readonly #shared: KeyValueStore;
  constructor(shared: KeyValueStore) {
    this.#shared = shared;
  }
  get(key: string) {
    return this.#shared.get(key);
  }
  getMany(keys: readonly string[]) {
    return this.#shared.getMany(keys);
  }
  set(key: string, value: string, ttlSeconds: number) {
    return this.#shared.set(key, value, ttlSeconds);
  }
  setIfAbsent(key: string, value: string, ttlSeconds: number) {
    return this.#shared.setIfAbsent(key, value, ttlSeconds);
  }
  compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds: number) {
    return this.#shared.compareAndSet(key, expected, value, ttlSeconds);
  }
  extendIfEquals(key: string, expected: string, ttlSeconds: number) {
    return this.#shared.extendIfEquals(key, expected, ttlSeconds);
  }
  deleteIfEquals(key: string, expected: string) {
    return this.#shared.deleteIfEquals(key, expected);
  }
  delete(key: string) {
    return this.#shared.delete(key);
  }
}

export interface BrokerInstance {
  store: StoreClient;
  /** A same-origin API call carrying exactly `cookie`. */
  api(path: string, cookie: string): Promise<Response>;
  /** `GET /auth/session` with exactly `cookie`. */
  session(cookie: string): Promise<Response>;
}

export function brokerInstance(shared: KeyValueStore): BrokerInstance {
  const store = new StoreClient(shared);
  const request = (path: string, cookie: string) => {
    const config = getConfig();
    return new Request(new URL(path, config.appOrigin), { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
  };
  const run = (handler: typeof handleProxy) => (path: string, cookie: string) =>
    handler(request(path, cookie), getConfig(), store).catch((error: unknown) => errorResponse(error));
  const api = run(handleProxy);
  const session = run(handleSession);
  return { store, api, session: (cookie) => session('/auth/session', cookie) };
}
