/**
 * AUDIT.md M2, scenario B: a refresh that made the session outgrow the cookie limit threw
 * inside the proxy's `finally`: the API's answer became 500 `server_error`, the new refresh
 * token never reached the browser (the session died after the grace window) and the
 * upstream body was never cancelled. Now the cookie stays within SESSION_COOKIE_MAX_BYTES
 * by dropping other resources' access tokens (they can be refreshed again), the answer
 * goes out, and the rotated refresh token is in the cookie.
 *
 * Two APIs with their own audiences (JWT access tokens of ~700 bytes each) and a budget
 * measured from the session itself: room for one resource's token, not for both.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDemoApi, type DemoApi } from '../../demo/api.ts';
import { startStack, type BrowserClient, type Stack } from '../helpers/stack.ts';
import { sleep, unsealSession } from '../helpers/core.ts';
import { freePort } from '../helpers/ports.ts';

let stack: Stack;
let orders: DemoApi;
let reports: DemoApi;
let routes: string;

before(async () => {
  const [ordersPort, reportsPort] = [await freePort(), await freePort()];
  const ORDERS = `http://localhost:${ordersPort}/`;
  const REPORTS = `http://localhost:${reportsPort}/`;
  stack = await startStack({
    idp: {
      accessTokenTtl: 4,
      rotateRefreshTokens: true,
      resources: { [ORDERS]: { scope: 'orders:read' }, [REPORTS]: { scope: 'reports:read' } },
    },
  });
  orders = await startDemoApi({ port: ordersPort, issuer: stack.idp.issuer, audience: ORDERS, name: 'orders' });
  reports = await startDemoApi({ port: reportsPort, issuer: stack.idp.issuer, audience: REPORTS, name: 'reports' });
  routes = JSON.stringify([
    { path: '/api/orders', upstream: orders.url, auth: 'required', resource: ORDERS, scopes: ['orders:read'] },
    { path: '/api/reports', upstream: reports.url, auth: 'required', resource: REPORTS, scopes: ['reports:read'] },
  ]);
});
after(async () => {
  await stack?.close();
  await orders?.close();
  await reports?.close();
});

/** The session cookie family's bytes in the Cookie header (`name=value; ` each). */
function familyBytes(browser: BrowserClient): number {
  return browser
    .cookieHeader()
    .split('; ')
    .filter((c) => /^cloakroom(\.\d+)?=/.test(c))
    .reduce((sum, c) => sum + Buffer.byteLength(c) + 2, 0);
}

async function signedInCalling(paths: string[]): Promise<BrowserClient> {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  for (const path of paths) {
    const response = await browser.api(path);
    assert.equal(response.status, 200, `${path}: ${await response.text()}`);
  }
  return browser;
}

test('a refresh that would overflow the budget drops the other resource\'s token: 200, within budget, the new refresh token kept', async () => {
  // Measure: one resource's token, then both, under a budget that holds anything.
  stack.configure({ BFF_ROUTES: routes, SESSION_COOKIE_MAX_BYTES: '32768' });
  const measuring = await signedInCalling(['/api/orders/a']);
  const withOne = familyBytes(measuring);
  await measuring.api('/api/reports/a');
  const withBoth = familyBytes(measuring);
  assert.ok(withBoth - withOne > 400, `a second token adds ${withBoth - withOne} bytes`);

  const budget = Math.max(1024, withOne + Math.floor((withBoth - withOne) / 2));
  stack.configure({ BFF_ROUTES: routes, SESSION_COOKIE_MAX_BYTES: String(budget) });
  const browser = await signedInCalling(['/api/orders/b']);
  assert.ok(familyBytes(browser) <= budget);

  // The reports token does not fit beside the orders token.
  const response = await browser.api('/api/reports/b');
  assert.equal(response.status, 200, 'the API answer is passed, never a 500');
  assert.equal(((await response.json()) as { api: string }).api, 'reports');
  assert.ok(familyBytes(browser) <= budget, `the family takes ${familyBytes(browser)} of ${budget} bytes`);
  const session = await unsealSession(browser.cookieHeader());
  assert.ok(session);
  assert.deepEqual(Object.keys(session.tokens).filter((r) => r !== ''), [JSON.parse(routes)[1].resource], 'the reports token kept, the orders one dropped');

  // The cookie holds the newest refresh token: later calls refresh with it, nothing is replayed.
  await sleep(2_300);
  for (const path of ['/api/orders/c', '/api/reports/c', '/api/orders/d']) {
    const later = await browser.api(path);
    assert.equal(later.status, 200, `${path}: ${await later.text()}`);
    assert.ok(familyBytes(browser) <= budget);
  }
  assert.equal(stack.idp.stats.grantsRevoked, 0, 'no refresh token was replayed');
});
