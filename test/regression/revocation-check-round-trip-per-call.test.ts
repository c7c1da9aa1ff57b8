/**
 * What broke (issue 8, point 3): the revocation check behind every API call read Redis
 * (one MGET per call): a network round trip on the hot path, 50–70 µs on loopback and
 * far more on a managed Redis. Through the real `npm start` server on a real Redis, the
 * server's own counters (`INFO commandstats`) must show that repeated API calls of one
 * session do not each read Redis, and a logout on a second instance must still be seen
 * by the first within a second (Redis pushes the invalidation).
 *
 * Fails before the fix: 50 API calls made at least 50 reads.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: RedisServer;
let stack: ProductionStack;
let second: { port: number; close(): Promise<void> };

before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({ env: { REDIS_URL: redis.url }, npmStart: true });
  second = await stack.startSecondInstance();
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

function readsOnServer(): number {
  let total = 0;
  for (const line of redis.cli('INFO', 'commandstats')) {
    const match = /^cmdstat_(?:get|mget):calls=(\d+)/.exec(line.trim());
    if (match) total += Number(match[1]);
  }
  return total;
}

test('50 API calls of one session do not read Redis 50 times; a logout on the other instance is still seen within a second', async () => {
  const alice = new BrowserClient(stack.url);
  await alice.signIn('alice');
  assert.equal((await alice.api('/api/demo/x')).status, 200);

  const before = readsOnServer();
  for (let i = 0; i < 50; i++) assert.equal((await alice.api('/api/demo/x')).status, 200);
  const reads = readsOnServer() - before;
  // The cache's entries live a second: a slow machine may refill them once or twice.
  assert.ok(reads < 25, `50 API calls made ${reads} Redis reads: the revocation check is not cached`);

  // The logout goes to the second instance; the first must see it within a second.
  const cookie = alice.cookieHeader();
  const logout = await rawRequest(`http://127.0.0.1:${second.port}`, {
    path: '/auth/logout',
    method: 'POST',
    headers: [['host', new URL(stack.url).host], ['cookie', cookie], ['origin', stack.url]],
  });
  assert.equal(logout.status, 303, 'logged out on the second instance');
  const within = Date.now() + 1_000;
  let status = (await alice.api('/api/demo/x')).status;
  while (status !== 401 && Date.now() < within) {
    await sleep(50);
    status = (await alice.api('/api/demo/x')).status;
  }
  assert.equal(status, 401, 'the first instance still served the session a second after the logout on the other');
});
