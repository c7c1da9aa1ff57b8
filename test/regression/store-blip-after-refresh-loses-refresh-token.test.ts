/**
 * What broke: with a shared store, a request that refreshed its session (the provider
 * rotated RT0 → RT1) reads the store once more after the API has answered, to write the
 * newest cookie. When Redis stalled in between, that read threw: the API's answer was
 * replaced by an error and the cookie carrying RT1 was never sent. The browser kept RT0,
 * already spent, and once the grace window passed the session was lost — a store blip
 * must never lose a session (CONTRACT.md, "Many instances"). The answer now carries the
 * session this request refreshed.
 *
 * Real parts: oidc-provider with rotation, a real upstream, a real redis-server paused
 * with SIGSTOP while the API is still answering.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RedisStore } from '../../lib/stores/redis.ts';
import { setStoreForTests } from '../../lib/stores/index.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const API = 'https://api.example/';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: RedisServer;
let store: RedisStore;
let stack: Stack;
let up: TestUpstream;

before(async () => {
  redis = await startRedis();
  up = await startUpstream();
  stack = await startStack({
    idp: { rotateRefreshTokens: true, resources: { [API]: { scope: 'api:read', accessTokenTtl: 4 } } },
    env: {
      REFRESH_GRACE_PERIOD: '1',
      BFF_ROUTES: JSON.stringify([{ path: '/api/slow', upstream: up.url, resource: API, scopes: ['api:read'] }]),
    },
  });
  store = new RedisStore({ url: redis.url, keyPrefix: 'blip-test:' });
  setStoreForTests(store);
});

after(async () => {
  redis?.resume();
  await store?.close();
  await stack?.close();
  await up?.close();
  await redis?.close();
});

test('a Redis stall while the API answers a refreshing request still hands the browser the rotated refresh token', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  assert.equal((await browser.api('/api/slow/echo')).status, 200);
  await sleep(2_300); // the access token (4 s) is renewed at half its life: stale now

  const grantsBefore = stack.idp.stats.refreshGrants;
  up.reset();
  const answer = browser.api('/api/slow/slow?ms=800');
  // The refresh is done once the API has the request; stall Redis while it answers.
  await up.waitFor((r) => r.url.includes('/slow'), 5_000);
  redis.pause();
  let response: Response;
  try {
    response = await answer;
  } finally {
    redis.resume();
  }
  assert.equal(stack.idp.stats.refreshGrants - grantsBefore, 1, 'the request refreshed');
  assert.equal(response.status, 200, `the API's answer reached the browser (got ${response.status})`);
  assert.ok(response.headers.getSetCookie().some((c) => /^cloakroom(\.\d+)?=[^;]/.test(c)), 'the answer carries the refreshed session cookie');
  await response.body?.cancel();

  await sleep(1_500); // past the 1 s grace window: only the rotated token can serve now
  const later = await browser.api('/api/slow/echo');
  assert.equal(later.status, 200, `the session lives on (got ${later.status})`);
  assert.equal(stack.idp.stats.grantsRevoked, 0, 'no refresh token was replayed');
});
