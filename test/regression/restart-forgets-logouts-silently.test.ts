/**
 * AUDIT M6: without a shared store, ended sessions, back-channel logouts and spent
 * refresh tokens live in the broker's memory, and a restart brings logged-out cookie
 * copies back to life. `npm start` said nothing about it. It now says so once, at start,
 * naming REDIS_URL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

let stack: ProductionStack;
before(async () => {
  stack = await startProductionStack({ npmStart: true });
});
after(() => stack?.close());

test('npm start without REDIS_URL warns once that revocations live in this process only', async () => {
  // A few requests first: the warning belongs to the start, not to each request.
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${stack.url}/auth/session`, { headers: { 'X-CSRF': '1' } })).status, 200);
  const warnings = stack
    .serverStderr()
    .split('\n')
    .filter((line) => line.includes('"store_in_process_memory"'))
    .map((line) => JSON.parse(line) as { level: string; message: string });
  assert.equal(warnings.length, 1, stack.serverStderr());
  assert.equal(warnings[0]?.level, 'warn');
  assert.match(warnings[0]?.message ?? '', /restart forgets them, so copies of logged-out cookies work again.*one instance only, or set REDIS_URL/);
});
