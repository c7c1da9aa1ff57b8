/**
 * What broke (AUDIT.md M6, point 4): the marks of spent refresh tokens lived in the broker
 * process's memory. After a restart, a stale copy of the cookie (taken before a refresh)
 * presented its spent refresh token, the broker no longer knew it was spent and sent it to
 * the provider, whose reuse detection then revoked the whole grant: the live session of
 * the same user ended too. With REDIS_URL, the marks survive the restart of the broker
 * (`next start`, the real production server): the stale copy is refused alone and the
 * live session keeps working.
 *
 * Fails before the fix: `getStore()` ignored REDIS_URL and always kept memory.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: RedisServer;
let stack: ProductionStack;

before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({
    // Access tokens of 4 s are renewed at half their life; a 1 s grace window.
    idp: { accessTokenTtl: 4 },
    env: { REDIS_URL: redis.url, REFRESH_GRACE_PERIOD: '1' },
  });
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

function withCookie(path: string, cookie: string): Promise<Response> {
  return fetch(new URL(path, stack.url), { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' }, redirect: 'manual' });
}

async function untilReady(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await fetch(`${stack.url}/readyz`)).status !== 200) {
    assert.ok(Date.now() < deadline, 'the restarted broker never became ready');
    await sleep(50);
  }
}

test('after a broker restart, a stale cookie copy cannot replay its spent refresh token', async () => {
  const alice = new BrowserClient(stack.url);
  await alice.signIn('alice');
  assert.equal((await alice.api('/api/demo/x')).status, 200);
  const staleCopy = alice.cookieHeader();

  // Two refreshes (RT0 → RT1 → RT2): the copy's RT0 is then neither the current token nor
  // its immediate predecessor (which adopts however late, AUDIT M3), so it is spent.
  const grantsBefore = stack.idp.stats.refreshGrants;
  for (let i = 0; i < 2; i++) {
    await sleep(2_300); // the access token is stale: the next call refreshes
    assert.equal((await alice.api('/api/demo/x')).status, 200);
  }
  assert.equal(stack.idp.stats.refreshGrants - grantsBefore, 2, 'the live session refreshed twice');
  assert.notEqual(alice.cookieHeader(), staleCopy, 'the browser holds the refreshed cookie');
  await sleep(1_500); // past the grace window: the copy can no longer adopt the successor

  await stack.restartServer();
  await untilReady();

  const stale = await withCookie('/api/demo/x', staleCopy);
  assert.equal(stale.status, 401, 'the stale copy is refused');
  assert.equal(stack.idp.stats.grantsRevoked, 0, 'the spent refresh token was replayed: the provider revoked the grant');
  const live = await alice.api('/api/demo/x');
  assert.equal(live.status, 200, `the live session was ended by the stale copy (got ${live.status})`);
});
