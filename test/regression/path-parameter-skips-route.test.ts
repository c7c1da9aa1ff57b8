/**
 * What broke: with routes `/api` and `/api/orders`, the request `/api/orders;x/delete`
 * matched `/api` (its first segment is `orders;x`) and reached an upstream that drops
 * `;x` as a path parameter (Tomcat, Spring), as `/orders/delete` — skipping the orders
 * route's methods and auth. Such a path is now refused.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseRouteTable, shadowsLongerRoute, matchRoute } from '../../lib/proxy/route-table.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api', upstream: up.url, auth: 'optional' },
        { path: '/api/orders', upstream: `${up.url}/orders`, auth: 'required', methods: ['GET'] },
      ]),
    },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('shadowsLongerRoute: only a ; that changes the route counts', () => {
  const table = parseRouteTable([
    { path: '/api', upstream: 'https://gw.internal' },
    { path: '/api/orders', upstream: 'https://gw.internal/orders' },
  ]);
  assert.ok(table.ok);
  const routes = table.routes;
  const at = (path: string) => shadowsLongerRoute(routes, path, matchRoute(routes, path)!.route);
  assert.equal(at('/api/orders;x/delete'), true);
  assert.equal(at('/api/orders;jsessionid=1'), true);
  assert.equal(at('/api/orders/a;b'), false, 'a ; inside the matched route changes nothing');
  assert.equal(at('/api/other;x'), false);
  assert.equal(at('/api/orders/x'), false);
});

test('/api/orders;x/delete is refused and reaches no upstream', async () => {
  up.records.length = 0;
  const browser = stack.newBrowser();
  for (const method of ['GET', 'POST', 'DELETE']) {
    const answer = await browser.api('/api/orders;x/delete', { method });
    assert.equal(answer.status, 400, `${method} answered ${answer.status}`);
    assert.deepEqual(await answer.json(), { error: 'invalid_request', message: 'the path is not allowed' });
  }
  assert.equal(up.records.length, 0);
});
