/**
 * The shared rate limits on a real three-node Redis Cluster (REDIS_CLUSTER_NODES): the
 * backend the broker builds from its configuration (`rateLimitBackendFor`) routes each
 * counter to its slot's node, and two instances share one budget there too.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { loadConfig, type Config } from '../../../lib/config/load.ts';
import { BrokerError } from '../../../lib/errors.ts';
import { limitApiCall, setRateLimitBackend } from '../../../lib/ops/rate-limit.ts';
import { rateLimitBackendFor } from '../../../lib/ops/rate-limit-redis.ts';
import { startRedisCluster, type RedisCluster } from '../../helpers/redis-server.ts';

let cluster: RedisCluster;
let backend: ReturnType<typeof rateLimitBackendFor>;

function instanceConfig(secret: string): Config {
  return loadConfig({
    APP_BASE_URL: 'http://localhost:3000',
    OIDC_ISSUER: 'http://localhost:3001',
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: 'cloakroom-test',
    OIDC_CLIENT_SECRET: 'not-used-here',
    SESSION_SECRETS: secret,
    BFF_ROUTES: '[]',
    RATE_LIMIT_API: '3',
    REDIS_CLUSTER_NODES: cluster.nodes.join(','),
    REDIS_KEY_PREFIX: 'rl-cluster:',
  });
}

before(async () => {
  cluster = await startRedisCluster();
});
after(async () => {
  setRateLimitBackend({});
  await (backend?.redis as { close(): Promise<void> } | undefined)?.close().catch(() => undefined);
  await cluster?.close();
});

test('two instances share one API budget per session on a Redis Cluster; the counters are on the cluster', async () => {
  const secret = randomBytes(32).toString('base64url');
  const first = instanceConfig(secret);
  const second = instanceConfig(secret);
  backend = rateLimitBackendFor(first.redis);
  setRateLimitBackend(backend);
  const request = new Request('http://localhost/api/x');
  const seen: number[] = [];
  for (const config of [first, second, first, second]) {
    try {
      await limitApiCall(request, config, 'session-a');
      seen.push(200);
    } catch (error) {
      if (!(error instanceof BrokerError)) throw error;
      seen.push(error.status);
    }
  }
  assert.deepEqual(seen, [200, 200, 200, 429]);
  const keys = cluster.keysByNode().flat().filter((key) => key.startsWith('rl-cluster:'));
  assert.equal(keys.length, 1, `counter keys on the cluster: ${keys.length}`);
  assert.match(keys[0], /^rl-cluster:api:rate:[A-Za-z0-9_-]{43}$/);
});
