/**
 * The broker on Redis, through the production server (`next start`, REDIS_URL set) and a
 * real redis-server: `/readyz` for load balancers, the outage behaviour of CONTRACT.md
 * ("Many instances": 503 store_unavailable, no cookie cleared, no session lost, service
 * back once Redis is), and what Redis gets to see (keys under the prefix, never a token,
 * a user or a session id in the clear).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

const PREFIX = 'e2e-shared:';
/** Far above the store's 300 ms deadline: a stalled Redis must never hold a request near the upstream timeout. */
const GENEROUS_BOUND_MS = 3_000;

let redis: RedisServer;
let stack: ProductionStack;

before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({ env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX } });
});
after(async () => {
  redis?.resume();
  await stack?.close();
  await redis?.close();
});

async function readyz(): Promise<{ status: number; cacheControl: string | null; body: unknown }> {
  const response = await fetch(`${stack.url}/readyz`, { signal: AbortSignal.timeout(GENEROUS_BOUND_MS) });
  return { status: response.status, cacheControl: response.headers.get('cache-control'), body: await response.json() };
}

/** A request that must settle within the bound (AbortSignal fails the test otherwise). */
function bounded(client: BrowserClient, path: string): Promise<Response> {
  return client.api(path, { signal: AbortSignal.timeout(GENEROUS_BOUND_MS) });
}

/** The session cookie family's Set-Cookie headers that expire it. */
function clearsSession(response: Response): string[] {
  return response.headers.getSetCookie().filter((c) => /^cloakroom(\.\d+)?=/.test(c) && /Max-Age=0/i.test(c));
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + GENEROUS_BOUND_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${GENEROUS_BOUND_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the broker on Redis (next start)', () => {
  test('GET /readyz: 200 ready; 503 with store: down while Redis is stalled, then ready again', async () => {
    // A fresh instance becomes ready once its first Redis connection and discovery are done.
    await eventually(async () => (await readyz()).status === 200, '/readyz 200 after start');
    const ready = await readyz();
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready' });
    assert.equal(ready.cacheControl, 'no-store');

    redis.pause();
    try {
      const down = await readyz();
      assert.equal(down.status, 503);
      assert.deepEqual(down.body, { status: 'unavailable', checks: { idp: 'ok', store: 'down' } });
      assert.equal(down.cacheControl, 'no-store');
    } finally {
      redis.resume();
    }
    await eventually(async () => (await readyz()).status === 200, '/readyz back to 200');
  });

  test('Redis stalled (SIGSTOP): API and session calls answer 503 store_unavailable promptly and keep the cookie; SIGCONT: the same cookie works', async () => {
    const alice = new BrowserClient(stack.url);
    await alice.signIn('alice');
    assert.equal((await alice.api('/api/demo/x')).status, 200);
    const cookieBefore = alice.cookieHeader();

    redis.pause();
    try {
      for (const path of ['/api/demo/x', '/auth/session']) {
        // The API call's revocation check may still be answered by the client-side cache
        // for up to its TTL (1 s, lib/stores/redis.ts): a stalled Redis pushes no
        // invalidation, so an entry is trusted no longer than that. Then it needs Redis.
        const until = Date.now() + 1_000 + GENEROUS_BOUND_MS;
        let response = await bounded(alice, path);
        while (response.status === 200 && Date.now() < until) {
          assert.deepEqual(clearsSession(response), [], path);
          await new Promise((resolve) => setTimeout(resolve, 100));
          response = await bounded(alice, path);
        }
        assert.equal(response.status, 503, `${path} while Redis is stalled`);
        assert.deepEqual(await response.json(), { error: 'store_unavailable' }, path);
        assert.equal(response.headers.get('cache-control'), 'no-store');
        assert.deepEqual(clearsSession(response), [], `${path}: a store outage must never clear the session cookie`);
      }
    } finally {
      redis.resume();
    }
    assert.equal(alice.cookieHeader(), cookieBefore, 'the browser still holds its session cookie');
    await eventually(async () => (await alice.api('/api/demo/x')).status === 200, 'the API call succeeding again');
    const session = (await (await alice.api('/auth/session')).json()) as { authenticated: boolean };
    assert.equal(session.authenticated, true, 'the session survived the outage');
  });

  test('Redis killed: 503 store_unavailable, cookie kept; Redis restarted: service is back', async () => {
    const bob = new BrowserClient(stack.url);
    await bob.signIn('bob');
    assert.equal((await bob.api('/api/demo/x')).status, 200);
    await redis.kill();
    try {
      const during = await bounded(bob, '/api/demo/x');
      assert.equal(during.status, 503);
      assert.deepEqual(await during.json(), { error: 'store_unavailable' });
      assert.deepEqual(clearsSession(during), []);
      const logout = await bob.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url }, signal: AbortSignal.timeout(GENEROUS_BOUND_MS) });
      assert.equal(logout.status, 503, 'a logout that cannot be recorded must not pretend to have ended the session');
    } finally {
      await redis.restart();
    }
    await eventually(async () => (await bob.api('/api/demo/x')).status === 200, 'the API call succeeding after Redis restarted');
  });

  test('Redis holds keys under REDIS_KEY_PREFIX only, and never a token, a user or a cookie in the clear', async () => {
    const carol = new BrowserClient(stack.url);
    await carol.signIn('alice');
    assert.equal((await carol.api('/api/demo/x')).status, 200);
    const sessionCookie = carol.cookieHeader();
    const logout = await carol.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url } });
    assert.equal(logout.status, 303);

    const keys = redis.cli('KEYS', '*');
    assert.ok(keys.length > 0, 'the logout wrote to Redis');
    const dump = keys.map((key) => `${key}\n${redis.cli('GET', key).join('\n')}`).join('\n');
    for (const key of keys) assert.ok(key.startsWith(PREFIX), `a key outside the prefix: ${key}`);
    for (const token of stack.issuedTokens) assert.ok(!dump.includes(token), 'a token issued by the provider is readable in Redis');
    for (const cookie of sessionCookie.split('; ')) {
      const value = cookie.slice(cookie.indexOf('=') + 1);
      assert.ok(!dump.includes(value), 'a session cookie value is readable in Redis');
    }
    assert.ok(!/alice/i.test(dump), 'the user is identifiable in Redis');
  });
});
