/**
 * AUDIT M2 (the front door): Node refuses more than 16 KiB of request headers with 431
 * before Next runs, and `next start` keeps that default. A browser carrying 20 KB of
 * cookies (an oversized session from before the cookie budget, or another app's cookies
 * on the host) got 431 on every request, /auth/logout included, so the broker could
 * never clear them. `npm start` accepts 64 KiB of headers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';

let stack: ProductionStack;
before(async () => {
  stack = await startProductionStack({ npmStart: true });
});
after(() => stack?.close());

/** 20 KB of cookies, in chunks a browser would store (each under 4,096 bytes). */
const LEGACY_COOKIES = Array.from({ length: 5 }, (_, i) => `legacy.${i}=${randomBytes(3000).toString('base64url')}`).join('; ');

test('a request carrying 20 KB of cookies is answered, not refused with 431', async () => {
  assert.ok(LEGACY_COOKIES.length > 20_000);
  const session = await rawRequest(stack.url, { path: '/auth/session', headers: [['X-CSRF', '1'], ['Cookie', LEGACY_COOKIES]] });
  assert.equal(session.status, 200, session.body.toString());
  assert.deepEqual(JSON.parse(session.body.toString()), { authenticated: false });

  const logout = await rawRequest(stack.url, {
    method: 'POST',
    path: '/auth/logout',
    headers: [['Origin', stack.url], ['Sec-Fetch-Site', 'same-origin'], ['Cookie', LEGACY_COOKIES]],
  });
  assert.equal(logout.status, 303, logout.body.toString());
});
