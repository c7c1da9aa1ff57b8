/**
 * The RedisStore on a local three-node Redis Cluster (REDIS_CLUSTER_NODES): keys spread
 * over every slot and node, so getMany cannot be one MGET (CROSSSLOT) and the scripts must
 * be routed by their key. The same contract as on one server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisStore } from '../../../lib/stores/redis.ts';
import { startRedisCluster, type RedisCluster } from '../../helpers/redis-server.ts';

let cluster: RedisCluster;
let store: RedisStore;
const PREFIX = 'cluster-test:';

before(async () => {
  cluster = await startRedisCluster();
  store = new RedisStore({ clusterNodes: cluster.nodes, keyPrefix: PREFIX });
});
after(async () => {
  await store?.close();
  await cluster?.close();
});

describe('RedisStore on a Redis Cluster', () => {
  test('getMany across slots, set-if-absent, fenced writes and owner-only release work through the cluster', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `ended:key-${i}`);
    for (const [i, key] of keys.entries()) if (i % 3 !== 1) await store.set(key, `v${i}`, 60);
    assert.deepEqual(
      await store.getMany(keys),
      keys.map((_, i) => (i % 3 !== 1 ? `v${i}` : undefined)),
    );

    assert.equal(await store.setIfAbsent('rt:lock:x', 'owner-a', 60), true);
    assert.equal(await store.setIfAbsent('rt:lock:x', 'owner-b', 60), false);
    assert.equal(await store.extendIfEquals('rt:lock:x', 'owner-b', 60), false);
    assert.equal(await store.extendIfEquals('rt:lock:x', 'owner-a', 60), true);
    assert.equal(await store.deleteIfEquals('rt:lock:x', 'owner-b'), false);
    assert.equal(await store.deleteIfEquals('rt:lock:x', 'owner-a'), true);
    assert.equal(await store.get('rt:lock:x'), undefined);

    assert.equal(await store.compareAndSet('rt:cur:s', undefined, 'gen-1', 60), true);
    assert.equal(await store.compareAndSet('rt:cur:s', 'gen-0', 'stale', 60), false);
    assert.equal(await store.compareAndSet('rt:cur:s', 'gen-1', 'gen-2', 60), true);
    assert.equal(await store.get('rt:cur:s'), 'gen-2');
    await store.delete('rt:cur:s');
    assert.equal(await store.get('rt:cur:s'), undefined);

    // The keys really are spread: more than one node holds some, all under the prefix.
    const byNode = cluster.keysByNode();
    const all = byNode.flat();
    for (const key of all) assert.ok(key.startsWith(PREFIX), `key outside the prefix: ${key}`);
    assert.equal(all.length, 20, 'the 20 written keys, each once, are on the cluster');
    assert.ok(byNode.filter((keys) => keys.length > 0).length >= 2, 'the keys did not spread over the nodes: getMany was not tested across slots');
  });
});
