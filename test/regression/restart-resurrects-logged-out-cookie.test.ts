/**
 * What broke (AUDIT.md M6): the record that a session had ended lived only in the
 * broker process's memory. A deploy, a crash or an OOM restarted the process, and a copy
 * of the cookie taken before the user signed out worked again; a second instance never
 * saw the logout at all. With REDIS_URL set, ended sessions live in Redis and a restart of
 * the broker (`next start`, the real production server) forgets nothing.
 *
 * Fails before the fix: `getStore()` ignored REDIS_URL and always kept memory.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

let redis: RedisServer;
let stack: ProductionStack;

before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({ env: { REDIS_URL: redis.url } });
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

function withCookie(path: string, cookie: string): Promise<Response> {
  return fetch(new URL(path, stack.url), { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' }, redirect: 'manual' });
}

test('a cookie copied before logout stays refused after the broker process restarts', async () => {
  const alice = new BrowserClient(stack.url);
  await alice.signIn('alice');
  // The browser's cookie after its first API call holds a live access token for the API:
  // the copy needs no refresh, so only the broker's record of the logout can stop it
  // (a copy that must refresh is also stopped by the provider, which revoked the grant).
  assert.equal((await alice.api('/api/demo/x')).status, 200);
  const copy = alice.cookieHeader();
  assert.equal((await withCookie('/api/demo/x', copy)).status, 200, 'the copy works while the session lives');

  const logout = await alice.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url } });
  assert.equal(logout.status, 303);
  assert.equal((await withCookie('/api/demo/x', copy)).status, 401, 'the copy is dead right after logout');

  const pidBefore = stack.pid;
  await stack.restartServer();
  assert.notEqual(stack.pid, pidBefore, 'a new broker process');
  // As a load balancer would: send traffic once the new instance reports ready (its
  // provider metadata and its store connection are up; memory is ready at once).
  const deadline = Date.now() + 10_000;
  while ((await fetch(`${stack.url}/readyz`)).status !== 200) {
    assert.ok(Date.now() < deadline, 'the restarted broker never became ready');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  const api = await withCookie('/api/demo/x', copy);
  assert.equal(api.status, 401, 'after the restart the logged-out copy reached the API again');
  assert.deepEqual(await api.json(), { error: 'unauthenticated' });
  const session = await withCookie('/auth/session', copy);
  assert.deepEqual(await session.json(), { authenticated: false }, 'after the restart /auth/session reported the logged-out copy as signed in');
});
