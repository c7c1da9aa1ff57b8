/**
 * `REDIS_URL=rediss://user:password@host:port`: the broker (`next start`) reaches a Redis
 * that speaks only TLS and requires a password — the shape of every managed Redis — keeps
 * its logouts there, and never writes the password to its logs. The server's certificate
 * is trusted the way an operator trusts a private CA: NODE_EXTRA_CA_CERTS.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startTlsRedis, type TlsRedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

let redis: TlsRedisServer;
let stack: ProductionStack;

before(async () => {
  redis = await startTlsRedis();
  stack = await startProductionStack({ env: { REDIS_URL: redis.url, NODE_EXTRA_CA_CERTS: redis.caFile } });
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

test('rediss:// with a password: ready, logouts recorded in Redis over TLS, the password never logged', async () => {
  const deadline = Date.now() + 10_000;
  let ready: Response;
  while ((ready = await fetch(`${stack.url}/readyz`)).status !== 200) {
    assert.ok(Date.now() < deadline, `never ready over TLS: ${await ready.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const alice = new BrowserClient(stack.url);
  await alice.signIn('alice');
  assert.equal((await alice.api('/api/demo/x')).status, 200);
  const copy = alice.cookieHeader();
  const logout = await alice.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url } });
  assert.equal(logout.status, 303);
  const replay = await fetch(`${stack.url}/api/demo/x`, { headers: { cookie: copy, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
  assert.equal(replay.status, 401, 'the logged-out copy is refused');

  const keys = redis.cli('KEYS', '*');
  assert.ok(keys.length > 0 && keys.every((k) => k.startsWith('cloakroom:')), `the logout went to the TLS Redis under the default prefix: ${keys.join(', ')}`);
  const logs = stack.serverStdout() + stack.serverStderr();
  assert.ok(!logs.includes(redis.password), 'the Redis password appears in the broker\'s logs');
});
