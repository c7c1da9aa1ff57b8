/**
 * SESSION_STORAGE=server through the production build (`next start`): the same endpoints
 * behave the same, the cookie stays one small sealed handle (150 group claims and two
 * APIs included), and logout deletes the record so that a copied cookie is dead.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';

let stack: ProductionStack;
before(async () => {
  stack = await startProductionStack({ env: { SESSION_STORAGE: 'server' }, idp: { accessTokenTtl: 4 } });
});
after(() => stack?.close());

const familyBytes = (cookieHeader: string) =>
  cookieHeader
    .split('; ')
    .filter((c) => /^cloakroom(\.\d+)?=/.test(c))
    .reduce((sum, c) => sum + Buffer.byteLength(c) + 2, 0);

test('150 groups, two APIs, a refresh, logout: under 400 bytes of cookies throughout; a copied cookie dies at logout', async () => {
  const browser = new BrowserClient(stack.url);
  assert.equal((await browser.signIn('carol')).status, 303);
  for (const round of [1, 2]) {
    for (const path of ['/api/demo/x', '/api/reports/x']) {
      const response = await browser.api(path);
      assert.equal(response.status, 200, `round ${round} ${path}: ${await response.text()}`);
      const bytes = familyBytes(browser.cookieHeader());
      assert.ok(bytes < 400, `round ${round} ${path}: ${bytes} bytes of cookies`);
    }
    if (round === 1) await new Promise((resolve) => setTimeout(resolve, 2_300));
  }
  const body = (await (await browser.api('/auth/session')).json()) as { authenticated: boolean; user: { sub: string } };
  assert.equal(body.authenticated, true);
  assert.equal(body.user.sub, 'user-carol');

  const copied = browser.cookieHeader();
  const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url } });
  assert.equal(logout.status, 303);
  const replay = await fetch(`${stack.url}/api/demo/x`, { headers: { cookie: copied, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
  assert.equal(replay.status, 401);
  assert.equal(((await replay.json()) as { error: string }).error, 'unauthenticated');
});
