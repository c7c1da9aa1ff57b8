/**
 * Streams end with their session on whichever instance they run (CONTRACT.md): with a
 * shared Redis, a logout on one `npm start` instance closes a WebSocket held open on
 * another within a second (code 4401).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

let redis: RedisServer;
let stack: ProductionStack;
before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({ npmStart: true, liveRoute: true, env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'e2e-streams:' } });
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

test('a logout on one instance closes a socket on the other within a second', { timeout: 60_000 }, async () => {
  const second = await stack.startSecondInstance();
  const browser = new BrowserClient(stack.url);
  await browser.signIn('alice');
  // The second instance behind the same public origin: Host and Origin name APP_BASE_URL, as a load balancer passes them.
  const ws = new WebSocket(`ws://127.0.0.1:${second.port}/api/live/ws`, {
    headers: { host: new URL(stack.url).host, origin: stack.url, cookie: browser.cookieHeader() },
  });
  const closed = new Promise<{ code: number; at: number }>((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));
  await new Promise((resolve, reject) => {
    ws.once('message', resolve);
    ws.once('error', reject);
  });
  const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url }, redirect: 'manual' });
  assert.equal(logout.status, 303);
  const at = Date.now();
  const socket = await closed;
  assert.equal(socket.code, 4401);
  assert.ok(socket.at - at < 1_500, `closed ${socket.at - at} ms after the logout on the other instance`);
});
