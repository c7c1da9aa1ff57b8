import { createClient, createCluster } from 'redis';
import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import type { RateLimitBackend } from './rate-limit.ts';

/**
 * The rate limits' connection to the shared Redis (REDIS_URL or REDIS_CLUSTER_NODES), so
 * that every instance counts against one budget: with N instances, per-process counters
 * would let a client N times the limit (and a load balancer's spreading decides which).
 *
 * A connection of its own, not the store's: rate-limiter-flexible drives a raw node-redis
 * client (`useRedisPackage`, its Lua script and `isReady` checks), and the store's
 * connection stays the store's concern. Failing over, not failing: nothing queues while
 * disconnected (`disableOfflineQueue`), and while this client is not ready the limiter's
 * in-memory insurance limiter answers (rate-limit.ts, `rejectIfRedisNotReady`, a 150 ms
 * deadline for a stalled server): during an outage each instance limits on its own, no
 * request fails because of the limits, and the shared counters resume on reconnect.
 */

const CONNECT_TIMEOUT_MS = 1_000;
const RECONNECT_MAX_DELAY_MS = 500;

function reconnectDelay(retries: number): number {
  // Jitter, so that many instances do not knock on a recovering server in lockstep.
  return Math.min(50 * 2 ** retries, RECONNECT_MAX_DELAY_MS) * (0.75 + Math.random() / 4);
}

interface Connectable {
  connect(): Promise<unknown>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** `{}` (this process's memory) without Redis configured; otherwise the shared backend, connecting in the background. */
export function rateLimitBackendFor(redis: Config['redis']): RateLimitBackend {
  if (!redis.url && redis.clusterNodes.length === 0) return {};
  const socket = { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay };
  const client: Connectable =
    redis.clusterNodes.length > 0
      ? createCluster({
          rootNodes: redis.clusterNodes.map((node) => ({ url: `redis://${node}` })),
          defaults: { disableOfflineQueue: true, socket },
        })
      : createClient({ url: redis.url, disableOfflineQueue: true, socket });
  let reportedDown = false;
  // Without a listener, node-redis's `error` event (every failed reconnect) would end the process.
  client.on('error', (error) => {
    if (reportedDown) return;
    reportedDown = true;
    log.warn('rate_limit_store_disconnected', { errorName: error.name });
  });
  let firstConnected: () => void = () => undefined;
  // A cold instance's first requests wait for the connection (at most a connection
  // attempt's time) instead of being counted by the insurance limiter alone, which would
  // give each new instance a budget of its own.
  const ready = new Promise<void>((resolve) => {
    firstConnected = resolve;
    setTimeout(resolve, CONNECT_TIMEOUT_MS).unref();
  });
  const connect = (): void => {
    client.connect().then(
      () => {
        reportedDown = false;
        firstConnected();
      },
      () => {
        // A cluster's first discovery is not retried by node-redis: retry here, so that an
        // instance started while Redis was down shares its limits once Redis is back.
        setTimeout(connect, RECONNECT_MAX_DELAY_MS).unref();
      },
    );
  };
  connect();
  return { redis: client, keyPrefix: redis.keyPrefix, ready };
}
