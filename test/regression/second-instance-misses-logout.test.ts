/**
 * What broke (AUDIT.md M6): logouts were recorded in the memory of the instance that
 * handled them. Behind a load balancer, a copy of the cookie sent to another instance
 * still worked after the user signed out. Two real broker processes (`next start`) with
 * the same configuration share one Redis: a logout on one is refused on the other
 * within a second (CONTRACT.md, "Many instances").
 *
 * Fails before the fix: `getStore()` ignored REDIS_URL and always kept memory.
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
  stack = await startProductionStack({ env: { REDIS_URL: redis.url } });
  second = await stack.startSecondInstance();
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

/** A request to the second instance, addressed as the public origin (what the balancer forwards). */
async function onSecond(path: string, cookie: string): Promise<number> {
  const answer = await rawRequest(`http://127.0.0.1:${second.port}`, {
    path,
    headers: [['host', new URL(stack.url).host], ['cookie', cookie], ['x-csrf', '1'], ['sec-fetch-site', 'same-origin']],
  });
  return answer.status;
}

test('a logout on one instance is refused on the other within a second', async () => {
  const deadline = Date.now() + 10_000;
  while ((await rawRequest(`http://127.0.0.1:${second.port}`, { path: '/readyz', headers: [['host', new URL(stack.url).host]] })).status !== 200) {
    assert.ok(Date.now() < deadline, 'the second instance never became ready');
    await sleep(50);
  }
  const alice = new BrowserClient(stack.url);
  await alice.signIn('alice');
  assert.equal((await alice.api('/api/demo/x')).status, 200);
  const copy = alice.cookieHeader();
  assert.equal(await onSecond('/api/demo/x', copy), 200, 'the second instance serves the session');

  const logout = await alice.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url } });
  assert.equal(logout.status, 303, 'logged out on the first instance');

  const within = Date.now() + 1_000;
  let status = await onSecond('/api/demo/x', copy);
  while (status !== 401 && Date.now() < within) {
    await sleep(50);
    status = await onSecond('/api/demo/x', copy);
  }
  assert.equal(status, 401, 'the second instance still served the logged-out cookie a second after the logout');
});
