/**
 * What broke: with a provider that does not rotate refresh tokens (the refresh token
 * stays the same), a refresh for resource A recorded its outcome under that token; a
 * request for resource B within the grace window took A's outcome for its own, again
 * and again, and answered 503 "token refresh did not settle". An outcome now serves a
 * request only when it rotated the token or is for the same resource.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const ORDERS = 'https://orders.example/';
const REPORTS = 'https://reports.example/';

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: {
      rotateRefreshTokens: false,
      resources: { [ORDERS]: { scope: 'orders:read' }, [REPORTS]: { scope: 'reports:read' } },
    },
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/orders', upstream: up.url, resource: ORDERS, scopes: ['orders:read'] },
        { path: '/api/reports', upstream: up.url, resource: REPORTS, scopes: ['reports:read'] },
      ]),
    },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('a second resource gets its own token from a provider that keeps the refresh token', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  assert.equal((await browser.api('/api/orders/echo')).status, 200);
  const reports = await browser.api('/api/reports/echo');
  assert.equal(reports.status, 200, `got ${reports.status}: ${await reports.text()}`);
  // Both at once from a fresh session, too.
  const other = stack.newBrowser();
  assert.equal((await other.signIn('bob')).status, 303);
  const both = await Promise.all([other.api('/api/orders/echo'), other.api('/api/reports/echo')]);
  assert.deepEqual(both.map((r) => r.status), [200, 200]);
  const audiences = up.records.slice(-2).map((r) => r.authorizationSha256);
  assert.notEqual(audiences[0], audiences[1], 'each API got its own token');
});
