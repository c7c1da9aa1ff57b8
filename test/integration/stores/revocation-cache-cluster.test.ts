/**
 * The revocation cache on a local three-node Redis Cluster (REDIS_CLUSTER_NODES): node-redis
 * shares one client-side cache across the cluster's node connections, each node tracking
 * the keys read from it. The revocation keys spread over every node; repeated checks
 * still send none of them a read (counted per node by the servers), and another
 * instance's logout is pushed from whichever node holds the mark, within a second.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type Config } from '../../../lib/config/load.ts';
import { endSession, isSessionEnded } from '../../../lib/session/revocation.ts';
import type { Session } from '../../../lib/session/session.ts';
import { RedisStore } from '../../../lib/stores/redis.ts';
import { startRedisCluster, type RedisCluster } from '../../helpers/redis-server.ts';

let cluster: RedisCluster;
let writer: RedisStore;
let reader: RedisStore;
const config: Config = loadConfig({
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'revocation-cache-cluster-test',
  OIDC_CLIENT_SECRET: 'Xb7mQ2pL9wRt4vNc8kZy3hFs6dJa1gUe5oIi0TqWn3',
  SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8,Hw4kT9pZ2mYc7vRb1nLx6sGd3fQa8uEj5oKi0WyNe2',
});

/** GET/MGET calls executed so far, summed over every master. */
function readsOnCluster(): number {
  let total = 0;
  for (const node of cluster.nodes) {
    const [host, port] = node.split(':');
    const out = spawnSync('redis-cli', ['-h', host, '-p', port, 'INFO', 'commandstats'], { encoding: 'utf8' }).stdout;
    for (const match of out.matchAll(/^cmdstat_(?:get|mget):calls=(\d+)/gm)) total += Number(match[1]);
  }
  return total;
}

before(async () => {
  cluster = await startRedisCluster();
  writer = new RedisStore({ clusterNodes: cluster.nodes, keyPrefix: 'rcc:' });
  // Ten minutes: only the invalidation can make the mark visible within the test.
  reader = new RedisStore({ clusterNodes: cluster.nodes, keyPrefix: 'rcc:', revocationCacheTtlMs: 600_000 });
});
after(async () => {
  await writer?.close();
  await reader?.close();
  await cluster?.close();
});

describe('revocation cache on a Redis Cluster', () => {
  test('repeated checks send no node a read; a logout written through another client is seen within a second', async () => {
    const now = Date.now();
    const erin = { v: 1, id: `id-erin-${now}`, iss: 'https://id.example.com', sub: 'user-erin', idpSid: 'sid-erin', user: { sub: 'user-erin' }, tokens: {}, createdAt: now, touchedAt: now } as Session;
    const readsAtStart = readsOnCluster();
    assert.equal(await isSessionEnded(reader, config, erin), false);
    assert.ok(readsOnCluster() - readsAtStart >= 8, 'the first check reads every key (two secrets × four subjects) from the nodes');
    const readsBefore = readsOnCluster();
    for (let i = 0; i < 200; i++) assert.equal(await isSessionEnded(reader, config, erin), false);
    assert.equal(readsOnCluster() - readsBefore, 0, '200 checks of a cached session must not reach any node');

    await endSession(writer, config, erin);
    const started = Date.now();
    while (!(await isSessionEnded(reader, config, erin))) {
      assert.ok(Date.now() - started < 1_000, 'the logout was not seen within a second');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
});
