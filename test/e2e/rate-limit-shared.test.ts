/**
 * Rate limits across instances, through two real `npm start` servers sharing a real
 * redis-server (REDIS_URL): a session's API budget and a client address's sign-in budget
 * are one budget whichever instance takes the request (the counters live in Redis, under
 * REDIS_KEY_PREFIX, keyed by HMACs). While Redis does not answer, the limits fall back to
 * each instance's memory (rate-limiter-flexible's insurance limiter): sign-ins still get
 * verdicts — 302 then 429 — never a 500.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { BrowserClient } from '../helpers/stack.ts';

const PREFIX = 'e2e-rate:';
const API_BUDGET = 6;
const AUTH_BUDGET = 4;

let redis: RedisServer;
let stack: ProductionStack;
let secondOrigin: string;

before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({
    npmStart: true,
    env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX, RATE_LIMIT_API: String(API_BUDGET), RATE_LIMIT_AUTH: String(AUTH_BUDGET) },
  });
  const second = await stack.startSecondInstance();
  secondOrigin = `http://127.0.0.1:${second.port}`;
});
after(async () => {
  redis?.resume();
  await stack?.close();
  await redis?.close();
});

/** Which instance takes a request: what a load balancer spreading them decides. */
type Instance = 'first' | 'second';
const originOf = (instance: Instance) => (instance === 'first' ? `http://127.0.0.1:${stack.port}` : secondOrigin);

/** Addressed as the public origin (the Host the balancer forwards), to either instance. */
function call(instance: Instance, path: string, headers: Array<[string, string]> = []) {
  return rawRequest(originOf(instance), { path, headers: [['host', new URL(stack.url).host], ...headers], signal: AbortSignal.timeout(5_000) });
}
const apiCall = (instance: Instance, cookie: string) => call(instance, '/api/demo/x', [['cookie', cookie], ['x-csrf', '1'], ['sec-fetch-site', 'same-origin']]);
const login = async (instance: Instance) => (await call(instance, '/auth/login')).status;

describe('rate limits shared on Redis (two npm start instances)', () => {
  test('one API budget per session across both instances; keys are hashed, under the prefix', async () => {
    const alice = new BrowserClient(stack.url);
    await alice.signIn('alice');
    const cookie = alice.cookieHeader();
    const seen: number[] = [];
    for (let i = 0; i < API_BUDGET + 2; i++) {
      const response = await apiCall(i % 2 === 0 ? 'first' : 'second', cookie);
      seen.push(response.status);
      if (response.status === 429) {
        assert.deepEqual(JSON.parse(response.body.toString()), { error: 'rate_limited' });
        assert.match(String(response.headers['retry-after']), /^\d+$/);
      }
    }
    // Per-instance counters would have let all 8 through (4 per instance, budget 6 each).
    assert.deepEqual(seen, [...Array(API_BUDGET).fill(200), 429, 429]);
    const keys = redis.cli('--scan', '--pattern', `${PREFIX}api*`);
    assert.ok(keys.length >= 1, 'the API counter is in Redis');
    for (const key of keys) assert.match(key, new RegExp(`^${PREFIX}api:rate:[A-Za-z0-9_-]{43}$`));
  });

  test('one sign-in budget per address across both instances', async () => {
    const seen: number[] = [];
    // The API test's sign-in already spent two of this address's budget on the first
    // instance (its /auth/login and /auth/callback share it): two left, on either instance.
    for (let i = 0; i < AUTH_BUDGET; i++) seen.push(await login(i % 2 === 0 ? 'second' : 'first'));
    assert.deepEqual(seen, [...Array(AUTH_BUDGET - 2).fill(302), 429, 429]);
  });

  test('Redis stalled: the limits fall back to each instance memory, verdicts not errors; nothing answers 500', async () => {
    redis.pause();
    try {
      const seen: number[] = [];
      for (let i = 0; i < AUTH_BUDGET + 1; i++) seen.push(await login('first'));
      // The in-memory insurance limiter starts from zero: sign-ins go through, then its
      // own count runs out within the budget. Neither a 500 nor "everything allowed".
      assert.equal(seen[0], 302, `statuses: ${seen}`);
      assert.equal(seen.at(-1), 429, `statuses: ${seen}`);
      assert.ok(seen.every((status) => status === 302 || status === 429), `statuses: ${seen}`);
    } finally {
      redis.resume();
    }
  });
});
