/**
 * The same endpoint table under `next start` (the app/ route files Vercel, `next start`
 * and `next dev` use), a trimmed set of the contract's checks: the full contract runs
 * against `npm start` (contract.test.ts). What differs under the route runtime is pinned
 * here too, so that a Next.js upgrade that changes it is noticed (README, "Front door"):
 * the query arrives rebuilt, raw dot segments are resolved, TRACE is Next's own error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rawRequest, rawSocketRequest } from '../helpers/raw-http.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

let stack: ProductionStack;
let upstream: TestUpstream;
const API = [['X-CSRF', '1']] as const;

before(async () => {
  upstream = await startUpstream();
  const routes = [
    { path: '/api/open', upstream: `${upstream.url}/v1`, auth: 'none', methods: ['GET', 'POST'] },
    { path: '/api/other', upstream: `${upstream.url}/other`, auth: 'none', methods: ['GET'] },
  ];
  stack = await startProductionStack({ env: { BFF_ROUTES: JSON.stringify(routes), OPS_TOKEN: undefined } });
});
after(async () => {
  await stack?.close();
  await upstream?.close();
});

async function assertError(response: Response, status: number, code: string, what: string): Promise<void> {
  assert.equal(response.status, status, what);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, what);
  assert.equal(response.headers.get('cache-control'), 'no-store', what);
  assert.equal(((await response.json()) as { error: string }).error, code, what);
}

describe('the endpoint table through the app/ route files (next start)', () => {
  test('every endpoint answers its methods and the contract\'s 405 with Allow for the rest', async () => {
    const cases: Array<[string, string, number, string | undefined]> = [
      ['GET', '/healthz', 200, undefined],
      ['GET', '/readyz', 200, undefined],
      ['POST', '/healthz', 405, 'GET, HEAD'],
      ['POST', '/auth/login', 405, 'GET, HEAD'],
      ['DELETE', '/auth/callback', 405, 'GET, HEAD'],
      ['GET', '/auth/logout', 405, 'POST'],
      ['GET', '/auth/backchannel-logout', 405, 'POST'],
      ['PUT', '/auth/session', 405, 'GET, HEAD'],
      ['POST', '/auth/sessions', 405, 'GET, HEAD'],
      ['GET', '/auth/sessions/revoke', 405, 'POST'],
    ];
    for (const [method, path, status, allow] of cases) {
      const response = await fetch(`${stack.url}${path}`, { method, redirect: 'manual' });
      assert.equal(response.status, status, `${method} ${path}`);
      // Not the front door: these are Next.js route handlers.
      assert.equal(response.headers.get('x-cloakroom-host'), null, `${method} ${path}`);
      if (allow) {
        assert.equal(response.headers.get('allow'), allow, `${method} ${path}`);
        await assertError(response, 405, 'method_not_allowed', `${method} ${path}`);
      } else await response.body?.cancel();
    }
  });

  test('the /ops/ endpoints do not exist without OPS_TOKEN: 404, whatever the method', async () => {
    for (const [method, path] of [['POST', '/ops/revoke'], ['GET', '/ops/revoke'], ['GET', '/ops/sessions'], ['GET', '/ops/anything']]) {
      await assertError(await fetch(`${stack.url}${path}`, { method }), 404, 'not_found', `${method} ${path}`);
    }
  });

  test('/auth/session needs X-CSRF and answers a signed-out browser', async () => {
    await assertError(await fetch(`${stack.url}/auth/session`), 403, 'csrf', 'no X-CSRF');
    const response = await fetch(`${stack.url}/auth/session`, { headers: { 'x-csrf': '1' } });
    assert.deepEqual(await response.json(), { authenticated: false });
  });

  test('the proxy answers through the catch-all route: CSRF, no route, a method not in the route', async () => {
    await assertError(await fetch(`${stack.url}/api/open/echo`), 403, 'csrf', 'no X-CSRF');
    await assertError(await fetch(`${stack.url}/api/none/x`, { headers: { 'x-csrf': '1' } }), 404, 'not_found', 'no route');
    await assertError(await fetch(`${stack.url}/api/other/x`, { method: 'POST', headers: { 'x-csrf': '1' } }), 405, 'method_not_allowed', 'POST on a GET route');
    upstream.reset();
    const ok = await fetch(`${stack.url}/api/open/echo/a?q=1`, { headers: { 'x-csrf': '1' } });
    assert.equal(ok.status, 200);
    assert.equal(upstream.records[0]?.url, '/v1/echo/a?q=1');
  });
});

describe('what the route runtime changes (README, "Front door")', () => {
  test('the query reaches the API as Next.js rebuilt it, not as sent', async () => {
    upstream.reset();
    const answer = await rawRequest(stack.url, { path: '/api/open/echo?x=1&y=%20z&x=2&empty=', headers: API });
    assert.equal(answer.status, 200);
    // Reordered and re-encoded by Next.js before any broker code runs; `npm start` forwards it as sent.
    assert.equal(upstream.records[0]?.url, '/v1/echo?x=1&x=2&y=+z&empty=');
  });

  test('raw dot segments are resolved by Next.js before routing (the front door refuses them)', async () => {
    upstream.reset();
    const answer = await rawRequest(stack.url, { path: '/api/open/../other/x', headers: API });
    assert.equal(answer.status, 200);
    assert.equal(upstream.records[0]?.url, '/other/x');
  });

  test('TRACE never reaches the API (Next.js refuses it before any route code)', async () => {
    upstream.reset();
    const answer = await rawSocketRequest(stack.port, `TRACE /api/open/echo HTTP/1.1\r\nHost: localhost:${stack.port}\r\nX-CSRF: 1`);
    assert.ok(answer.status >= 400, `TRACE answered ${answer.status}`);
    assert.equal(upstream.records.length, 0);
  });
});
