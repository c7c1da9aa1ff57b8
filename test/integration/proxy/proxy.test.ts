/**
 * The proxy end to end (CONTRACT.md, "Route table" and `any method /api/...`): a real
 * oidc-provider, the broker's route code over HTTP, a recording upstream and the demo
 * API that validates the bearer token it receives. Routing by longest prefix at a
 * segment boundary, methods per route, auth required / optional / none, and a token
 * that the API itself accepts: signed by the provider, for its audience (RFC 8707), with
 * the route's scopes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoApi, type DemoApi } from '../../../demo/api.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { rawRequest } from '../../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const ORDERS = 'https://orders.example/';

let stack: Stack;
let up: TestUpstream;
let api: DemoApi;
let alice: BrowserClient;

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

function assertNothingForwarded(message: string): void {
  assert.deepEqual(
    up.records.map((r) => `${r.method} ${r.url}`),
    [],
    `${message}: the upstream must see nothing`,
  );
}

before(async () => {
  up = await startUpstream();
  stack = await startStack({ idp: { resources: { [ORDERS]: { scope: 'orders:read orders:write' } } } });
  api = await startDemoApi({ port: 0, issuer: stack.idp.issuer, audience: ORDERS, name: 'orders' });
  stack.configure({
    BFF_ROUTES: JSON.stringify([
      { path: '/api/up', upstream: `${up.url}/v1`, auth: 'required', methods: ['GET', 'POST'] },
      { path: '/api/up/deep', upstream: `${up.url}/deep-base/`, auth: 'required' },
      { path: '/api/upper', upstream: `${up.url}/upper-base`, auth: 'none' },
      { path: '/api/open', upstream: up.url, auth: 'none' },
      { path: '/api/maybe', upstream: `${up.url}/maybe`, auth: 'optional' },
      { path: '/api/orders', upstream: `${api.url}/v1`, auth: 'required', resource: ORDERS, scopes: ['orders:read'] },
    ]),
  });
  alice = stack.newBrowser();
  const callback = await alice.signIn('alice');
  assert.equal(callback.status, 303, 'sign-in completes');
});

after(async () => {
  await stack?.close();
  await api?.close();
  await up?.close();
});

describe('routing', () => {
  test('the rest of the path and the query are appended to the upstream base', async () => {
    up.reset();
    const response = await alice.api('/api/up/a/b?x=1&y=%20z&x=2');
    assert.equal(response.status, 200);
    const seen = await json(response);
    assert.equal(seen.url, '/v1/a/b?x=1&y=%20z&x=2');
    assert.equal(up.records.length, 1);
    assert.equal(up.records[0]?.url, '/v1/a/b?x=1&y=%20z&x=2');
    assert.equal(up.records[0]?.headers.host, `${up.host}:${up.port}`, 'sent to the configured upstream host');
  });

  test('the route path itself and its trailing slash map to the base', async () => {
    up.reset();
    assert.equal((await alice.api('/api/up')).status, 200);
    assert.equal((await alice.api('/api/up/')).status, 200);
    assert.equal((await alice.api('/api/open/')).status, 200);
    assert.deepEqual(
      up.records.map((r) => r.url),
      ['/v1', '/v1/', '/'],
    );
  });

  test('the longest matching prefix wins, at a segment boundary only', async () => {
    up.reset();
    assert.equal((await alice.api('/api/up/deep/x')).status, 200);
    assert.equal((await alice.api('/api/up/deep')).status, 200);
    assert.equal((await alice.api('/api/up/deeper/x')).status, 200);
    assert.equal((await alice.api('/api/upper/x')).status, 200);
    assert.deepEqual(
      up.records.map((r) => r.url),
      ['/deep-base/x', '/deep-base', '/v1/deeper/x', '/upper-base/x'],
    );
  });

  for (const path of ['/api/upx', '/api/upx/a', '/api/nothing', '/api/nothing/a', '/api/', '/api/u', '/api/UP/a', '/api/orders-x/a']) {
    test(`no route for ${path}: 404 not_found, nothing forwarded`, async () => {
      up.reset();
      const before = api.stats.requests;
      const response = await alice.api(path);
      assert.equal(response.status, 404);
      assert.deepEqual(await json(response), { error: 'not_found' });
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
      assertNothingForwarded(path);
      assert.equal(api.stats.requests, before);
    });
  }
});

describe('methods', () => {
  for (const method of ['PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
    test(`${method} on a GET/POST route: 405 method_not_allowed with Allow, nothing forwarded`, async () => {
      up.reset();
      const response = await alice.api('/api/up/a', { method });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get('allow'), 'GET, POST');
      if (method !== 'HEAD') assert.deepEqual(await json(response), { error: 'method_not_allowed' });
      assertNothingForwarded(method);
    });
  }

  test('405 comes before authentication: no session needed to learn the allowed methods', async () => {
    up.reset();
    const anonymous = stack.newBrowser();
    const response = await anonymous.api('/api/up/a', { method: 'DELETE' });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'GET, POST');
    assertNothingForwarded('DELETE without a session');
  });

  test('an allowed POST is forwarded with its method and body', async () => {
    up.reset();
    const body = JSON.stringify({ order: 42 });
    const response = await alice.api('/api/up/orders', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 200);
    const seen = await json(response);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.bodySize, Buffer.byteLength(body));
    assert.equal(up.records[0]?.headers['content-type'], 'application/json');
  });

  test('a route without `methods` takes every method a browser API call uses', async () => {
    up.reset();
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const response = await alice.api('/api/open/x', { method, body: method === 'GET' ? undefined : 'x' });
      assert.equal(response.status, 200, method);
      await response.body?.cancel();
    }
    const head = await alice.api('/api/open/x', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.deepEqual(
      up.records.map((r) => r.method),
      ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'],
    );
  });
});

describe('auth', () => {
  test('required without a session: 401 unauthenticated, nothing forwarded', async () => {
    up.reset();
    const anonymous = stack.newBrowser();
    const response = await anonymous.api('/api/up/a');
    assert.equal(response.status, 401);
    assert.deepEqual(await json(response), { error: 'unauthenticated' });
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assertNothingForwarded('required route without a session');
  });

  test('required with an unreadable cookie: 401 unauthenticated, the cookie is cleared, nothing forwarded', async () => {
    up.reset();
    const response = await rawRequest(stack.broker.url, {
      path: '/api/up/a',
      headers: [
        ['X-CSRF', '1'],
        ['Cookie', 'cloakroom=Fe26.2**tampered**value'],
      ],
    });
    assert.equal(response.status, 401);
    assert.deepEqual(JSON.parse(response.body.toString()), { error: 'unauthenticated' });
    const cleared = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
    assert.ok(cleared.some((c) => /^cloakroom=;/.test(c) && /Max-Age=0/i.test(c)), 'the dead cookie is expired');
    assertNothingForwarded('required route with a tampered cookie');
  });

  test('required with a session: Bearer token attached, the browser cookie never forwarded', async () => {
    up.reset();
    const response = await alice.api('/api/up/a');
    assert.equal(response.status, 200);
    const record = up.records[0];
    assert.ok(record?.bearer, 'Authorization: Bearer <token>');
    assert.equal(record?.headers.cookie, undefined);
    const seen = await json(response);
    assert.equal((seen.headers as Record<string, string>).authorization, 'Bearer <present>');
  });

  test('optional without a session: forwarded without Authorization', async () => {
    up.reset();
    const anonymous = stack.newBrowser();
    const response = await anonymous.api('/api/maybe/a');
    assert.equal(response.status, 200);
    assert.equal(up.records.length, 1);
    assert.equal(up.records[0]?.url, '/maybe/a');
    assert.equal(up.records[0]?.authorizationSha256, undefined);
  });

  test('optional with a session: forwarded with the Bearer token', async () => {
    up.reset();
    const response = await alice.api('/api/maybe/a');
    assert.equal(response.status, 200);
    assert.ok(up.records[0]?.bearer);
  });

  test('none: never a token nor the cookie, even with a session', async () => {
    up.reset();
    const response = await alice.api('/api/open/a', { headers: { authorization: 'Bearer from-the-browser' } });
    assert.equal(response.status, 200);
    assert.equal(up.records[0]?.authorizationSha256, undefined);
    assert.equal(up.records[0]?.headers.cookie, undefined);
  });

  test('none without a session: forwarded', async () => {
    up.reset();
    const response = await stack.newBrowser().api('/api/open/a');
    assert.equal(response.status, 200);
    assert.equal(up.records.length, 1);
  });
});

describe('the token the API receives', () => {
  test('is a JWT the demo API validates: signed by the provider, for its audience, with the route scopes', async () => {
    const before = api.stats.requests;
    const response = await alice.api('/api/orders/list?page=2');
    assert.equal(response.status, 200, 'the demo API accepted the token');
    const seen = await json(response);
    assert.equal(seen.api, 'orders');
    assert.equal(seen.path, '/v1/list');
    assert.equal(seen.subject, 'user-alice');
    assert.equal(seen.audience, ORDERS, 'aud is the route resource (RFC 8707)');
    const scopes = String(seen.scope ?? '').split(' ');
    assert.ok(scopes.includes('orders:read'), `the route scope is granted, got ${JSON.stringify(seen.scope)}`);
    assert.ok(!scopes.includes('orders:write'), 'a scope no route asked for is not in the token');
    assert.equal(seen.clientId, 'cloakroom-test');
    assert.equal(api.stats.requests, before + 1);
  });

  test('a token the API cannot validate is refused by it (the check above is real)', async () => {
    const answer = await rawRequest(api.url, { path: '/v1/direct', headers: [['Authorization', 'Bearer not-a-token']] });
    assert.equal(answer.status, 401);
  });

  test('without a session the orders route answers 401 and the API sees nothing', async () => {
    const before = api.stats.requests;
    const response = await stack.newBrowser().api('/api/orders/list');
    assert.equal(response.status, 401);
    assert.equal(api.stats.requests, before);
  });
});
