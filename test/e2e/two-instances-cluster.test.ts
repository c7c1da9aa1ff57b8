/**
 * CONTRACT.md "Many instances" on a Redis Cluster: two real `npm start` broker processes
 * with REDIS_CLUSTER_NODES pointing at a local three-master cluster, the real rotating
 * oidc-provider. Sign-in on A, a refresh on B (one grant; the older cookie adopts it on A
 * without another), a logout on A refused on B within a second — every key under the prefix.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep } from '../helpers/calls.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';
import { call, instanceAt, pollUntil, untilReady, type Instance } from '../helpers/two-instances.ts';

const PREFIX = 'e2e-cluster:';
let cluster: RedisCluster;
let stack: ProductionStack;
let A: Instance;
let B: Instance;

before(async () => {
  cluster = await startRedisCluster();
  stack = await startProductionStack({
    npmStart: true,
    idp: { accessTokenTtl: 10 },
    env: { REDIS_CLUSTER_NODES: cluster.nodes.join(','), REDIS_KEY_PREFIX: PREFIX, TOKEN_REFRESH_SKEW: '5', RATE_LIMIT_API: '100000', RATE_LIMIT_AUTH: '100000' },
  });
  const second = await stack.startSecondInstance();
  A = instanceAt('A', stack.port);
  B = instanceAt('B', second.port);
  await Promise.all([untilReady(stack, A), untilReady(stack, B)]);
});
after(async () => {
  await stack?.close();
  await cluster?.close();
});

const refreshGrants = () => stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token').length;

test('on a three-node Redis Cluster: sign-in on A, one refresh on B adopted by A, a logout on A refused on B within a second', async () => {
  const browser = new BrowserClient(stack.url);
  assert.equal((await browser.signIn('alice')).status, 303);
  const signedIn = browser.cookieHeader();
  assert.equal((await call(stack, A, '/api/demo/x', signedIn)).status, 200);

  await sleep(5_500);
  const before = refreshGrants();
  const refreshed = await call(stack, B, '/api/demo/x', signedIn);
  assert.equal(refreshed.status, 200, 'B refreshed');
  assert.ok(refreshed.newCookie);
  assert.equal(refreshGrants() - before, 1, 'one refresh grant');
  const adopted = await call(stack, A, '/api/demo/x', signedIn);
  assert.equal(adopted.status, 200, 'the older cookie on A adopts B’s refresh');
  assert.equal(refreshGrants() - before, 1, 'A made no grant of its own: it found B’s outcome in the cluster');
  assert.equal(stack.idp.stats.grantsRevoked, 0);

  const live = refreshed.newCookie;
  assert.equal((await call(stack, A, '/auth/logout', live, { method: 'POST', headers: [['origin', stack.url]] })).status, 303);
  const seenMs = await pollUntil(async () => (await call(stack, B, '/api/demo/x', live)).status === 401, 1_000, 'B refusing the logged-out cookie');
  process.stdout.write(`# logout on A refused on B after ${Math.round(seenMs)} ms\n`);

  const keys = cluster.keysByNode();
  assert.ok(keys.flat().length > 0 && keys.flat().every((key) => key.startsWith(PREFIX)), 'every key under the prefix');
});
