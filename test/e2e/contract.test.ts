/**
 * CONTRACT.md, black-box, against the production build through `npm start` (the broker's
 * own front door, server/) over plain HTTP — what production runs; the route handlers
 * under `next start` get a trimmed set of the same checks (route-handlers.test.ts):
 * every endpoint's status codes, the `{"error": code}` body and `Cache-Control: no-store`
 * on the broker's own JSON answers, CSRF and same-origin checks, path escapes sent raw
 * (as no browser or fetch would send them), CVE-2025-29927's header, unreadable cookies,
 * forged callbacks — and, after everything, that the server's logs hold no secret.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { sealData } from 'iron-session';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { startProductionStack, CLIENT_ID, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';

const SESSION_COOKIE = 'cloakroom';
const TX_COOKIE_PREFIX = 'cloakroom-tx.';
const PATH_FIXTURES = JSON.parse(readFileSync(new URL('../fixtures/path-payloads.json', import.meta.url), 'utf8')) as { refused: string[] };

/** The path as a WHATWG URL parser (Next.js, like the browser) turns it: dot segments resolved, `\\` and `"<>` etc. re-encoded. */
function parsedPath(path: string): string {
  return new URL(path, 'http://x').pathname;
}

/** The fixture's payloads that can be sent raw at all: printable, slash-led, no `?`/`#`. */
const SENDABLE_FIXTURES = PATH_FIXTURES.refused.filter((p) => p.startsWith('/') && /^[\x21-\x7e]+$/.test(p) && !p.includes('?') && !p.includes('#'));

const JWT = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+/;

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let stack: ProductionStack;
/** Signed in once as alice; most checks reuse this session. */
let alice: BrowserClient;
/** Every cookie value the broker handed out in this file: none may show up in the logs. */
const cookieValues = new Set<string>();
/** The parameters of every pushed authorization request the provider accepted. */
const pushedRequests: Array<Record<string, unknown>> = [];

function rememberCookies(response: Response): void {
  for (const header of response.headers.getSetCookie()) {
    const pair = header.split(';', 1)[0] ?? '';
    const value = pair.slice(pair.indexOf('=') + 1);
    if (value.length > 0) cookieValues.add(value);
  }
}

async function signIn(client: BrowserClient, returnTo?: string): Promise<Response> {
  const callback = await client.signIn('alice', 'alice-password', returnTo);
  rememberCookies(callback);
  return callback;
}

/**
 * A request with the path exactly as given — no dot-segment removal, no re-encoding,
 * which `fetch` and every browser would apply first.
 */
function raw(path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: stack.port,
        path,
        method: options.method ?? 'GET',
        headers: { host: `localhost:${stack.port}`, ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** An authenticated, same-origin API call as the page's JavaScript makes it, with the raw path. */
function rawApi(path: string, client: BrowserClient = alice, method = 'GET'): Promise<RawAnswer> {
  return raw(path, { method, headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', cookie: client.cookieHeader() } });
}

/** The contract's error answer: status, `{"error": code}`, JSON, never cached. */
function assertError(answer: { status: number; contentType: string | null; cacheControl: string | null; body: string }, status: number, code: string, what: string): void {
  assert.equal(answer.status, status, `${what}: status (body ${answer.body.slice(0, 200)})`);
  assert.match(answer.contentType ?? '', /^application\/json/, `${what}: content-type`);
  assert.equal(answer.cacheControl, 'no-store', `${what}: cache-control`);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  assert.equal(body.error, code, `${what}: error code`);
  for (const key of Object.keys(body)) assert.ok(key === 'error' || key === 'message', `${what}: unexpected key ${key}`);
}

async function fromResponse(response: Response) {
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    cacheControl: response.headers.get('cache-control'),
    body: await response.text(),
  };
}

function fromRaw(answer: RawAnswer) {
  const header = (name: string) => {
    const value = answer.headers[name];
    return Array.isArray(value) ? value.join(', ') : (value ?? null);
  };
  return { status: answer.status, contentType: header('content-type'), cacheControl: header('cache-control'), body: answer.body };
}

/** A Set-Cookie that stores a session (whole or a chunk), not one that clears it. */
function sessionCookieSet(headers: string[]): string | undefined {
  return headers.find((h) => /^cloakroom(\.\d+)?=[^;]/.test(h));
}

/** The session cookie family in a client's jar: `cloakroom`, or `cloakroom.0`, `cloakroom.1`, … */
function sessionCookies(client: BrowserClient): Array<[string, string]> {
  return client
    .cookieHeader()
    .split('; ')
    .map((part): [string, string] => [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)])
    .filter(([name]) => /^cloakroom(\.\d+)?$/.test(name))
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
}

function assertNoSecrets(text: string, what: string): void {
  for (const token of stack.issuedTokens) assert.ok(!text.includes(token), `${what} holds a token the provider issued`);
  assert.doesNotMatch(text, JWT, `${what} holds a JWT`);
}

describe('the contract, against the production build', () => {
  before(async () => {
    stack = await startProductionStack({ npmStart: true });
    stack.idp.provider.on('pushed_authorization_request.success', (ctx: KoaContextWithOIDC) => {
      pushedRequests.push({ ...(ctx.oidc.params as Record<string, unknown>) });
    });
    alice = new BrowserClient(stack.url);
    const callback = await signIn(alice);
    assert.equal(callback.status, 303, 'alice signs in');
  });

  after(async () => {
    await stack?.close();
  });

  test('GET /healthz answers 200 {"status":"ok"}, not cached', async () => {
    const response = await fetch(`${stack.url}/healthz`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), { status: 'ok' });
    assert.equal(response.headers.get('x-powered-by'), null, 'no framework fingerprint');
  });

  test('methods an endpoint does not serve are 405 method_not_allowed with Allow', async () => {
    const cases: Array<[string, string, string]> = [
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/healthz', 'GET, HEAD'],
      ['POST', '/auth/session', 'GET, HEAD'],
      ['PUT', '/auth/login', 'GET, HEAD'],
      ['POST', '/auth/callback', 'GET, HEAD'],
      ['GET', '/auth/logout', 'POST'],
      ['PUT', '/auth/logout', 'POST'],
      ['GET', '/auth/backchannel-logout', 'POST'],
      ['OPTIONS', '/auth/session', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const answer = await raw(path, { method, headers: { 'x-csrf': '1' } });
      assertError(fromRaw(answer), 405, 'method_not_allowed', `${method} ${path}`);
      assert.equal(answer.headers.allow, allow, `${method} ${path}: Allow`);
    }
  });

  test('GET /auth/session needs X-CSRF: 1 and same-origin evidence', async () => {
    const client = new BrowserClient(stack.url);
    const cases: Array<[string, Record<string, string>]> = [
      ['no X-CSRF', { cookie: alice.cookieHeader() }],
      ['X-CSRF: 0', { 'x-csrf': '0', cookie: alice.cookieHeader() }],
      ['a foreign Origin', { 'x-csrf': '1', origin: 'https://evil.example', cookie: alice.cookieHeader() }],
      ['Sec-Fetch-Site: cross-site', { 'x-csrf': '1', 'sec-fetch-site': 'cross-site', cookie: alice.cookieHeader() }],
      ['Sec-Fetch-Site: same-site', { 'x-csrf': '1', 'sec-fetch-site': 'same-site', cookie: alice.cookieHeader() }],
    ];
    for (const [what, headers] of cases) {
      const response = await client.fetch('/auth/session', { headers });
      assertError(await fromResponse(response), 403, 'csrf', what);
    }
    const anonymous = await client.api('/auth/session');
    assert.equal(anonymous.status, 200);
    assert.equal(anonymous.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await anonymous.json(), { authenticated: false });
  });

  test('GET /auth/session with a session: the user and expiresAt, never a token', async () => {
    const response = await alice.api('/auth/session');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const text = await response.text();
    assertNoSecrets(text, '/auth/session');
    const body = JSON.parse(text) as { authenticated: boolean; user: Record<string, unknown>; expiresAt: number };
    assert.deepEqual(Object.keys(body).sort(), ['authenticated', 'expiresAt', 'user']);
    assert.equal(body.authenticated, true);
    assert.deepEqual(body.user, { sub: 'user-alice', name: 'Alice Example', email: 'alice@example.com' });
    assert.ok(Number.isInteger(body.expiresAt) && body.expiresAt > Date.now() / 1000, 'expiresAt is a future unix time in seconds');
  });

  test('GET /auth/login: 302 to the provider by PAR with PKCE S256, state, nonce; a Lax transaction cookie', async () => {
    const client = new BrowserClient(stack.url);
    const before = pushedRequests.length;
    const response = await client.fetch('/auth/login?returnTo=/after');
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(location.origin, new URL(stack.idp.issuer).origin);
    assert.equal(location.searchParams.get('client_id'), CLIENT_ID);
    assert.ok(location.searchParams.get('request_uri'), 'the parameters were pushed (PAR), only request_uri travels');
    assert.equal(location.searchParams.get('code_challenge'), null);
    assert.equal(pushedRequests.length, before + 1);
    const pushed = pushedRequests.at(-1) as Record<string, unknown>;
    assert.equal(pushed.code_challenge_method, 'S256');
    assert.match(String(pushed.code_challenge), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(pushed.redirect_uri, `${stack.url}/auth/callback`);
    assert.equal(pushed.response_type, 'code');
    assert.ok(String(pushed.state).length >= 16, 'state');
    assert.ok(String(pushed.nonce).length >= 16, 'nonce');
    const cookies = response.headers.getSetCookie();
    const tx = cookies.find((c) => c.startsWith(`${TX_COOKIE_PREFIX}${String(pushed.state)}=`));
    assert.ok(tx, 'a transaction cookie named after the state');
    assert.match(tx, /; HttpOnly/);
    assert.match(tx, /; SameSite=Lax/);
    assert.match(tx, /; Path=\//);
    assert.doesNotMatch(tx, /; Domain=/i);
    rememberCookies(response);
  });

  test('the callback sets the session cookie (HttpOnly, Path=/, SameSite=Strict, no Domain) and goes to returnTo', async () => {
    const client = new BrowserClient(stack.url);
    const callback = await signIn(client, '/reports?year=2025');
    assert.equal(callback.status, 303);
    assert.equal(callback.headers.get('location'), `${stack.url}/reports?year=2025`);
    const cookie = sessionCookieSet(callback.headers.getSetCookie());
    assert.ok(cookie, 'a session cookie');
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; Path=\/(;|$)/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.doesNotMatch(cookie, /; Domain=/i);
    assert.doesNotMatch(cookie, /; Secure/, 'not Secure over http (localhost)');
    assert.match(cookie, /^cloakroom=Fe26\.2\*/, 'an iron seal, not a readable value');
    assertNoSecrets(cookie, 'the session cookie');
  });

  test('returnTo is honoured only as a same-origin path', async () => {
    for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
      const client = new BrowserClient(stack.url);
      const callback = await signIn(client, returnTo);
      assert.equal(callback.status, 303);
      assert.equal(callback.headers.get('location'), `${stack.url}/`, `returnTo ${returnTo}`);
    }
  });

  test('a callback with a forged state is 400, sets no session and never redirects', async () => {
    const client = new BrowserClient(stack.url);
    await client.startLogin('/after'); // a real transaction in the jar, which the forged state does not name
    const iss = encodeURIComponent(stack.idp.issuer);
    const forgedState = 'forged-state-0123456789abcdef';
    for (const query of [`?code=abc&state=${forgedState}&iss=${iss}`, '?code=abc', '', `?error=access_denied&state=${forgedState}`]) {
      const response = await client.fetch(`/auth/callback${query}`);
      assertError(await fromResponse(response), 400, 'invalid_request', `callback ${query}`);
      assert.equal(response.headers.get('location'), null);
      assert.equal(sessionCookieSet(response.headers.getSetCookie()), undefined, `no session cookie for ${query}`);
    }
    // A browser gets a readable page instead of JSON, with the same guarantees.
    const page = await client.fetch(`/auth/callback?code=abc&state=${forgedState}&iss=${iss}`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 400);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('location'), null);
    assert.equal(sessionCookieSet(page.headers.getSetCookie()), undefined);
    assert.match(await page.text(), /Sign-in failed/);
    // A state taken from one transaction cannot be finished by a browser that does not hold it.
    const other = new BrowserClient(stack.url);
    await other.startLogin();
    const state = pushedRequests.at(-1)?.state as string;
    const stranger = new BrowserClient(stack.url);
    const answer = await stranger.fetch(`/auth/callback?code=abc&state=${encodeURIComponent(state)}&iss=${iss}`);
    assertError(await fromResponse(answer), 400, 'invalid_request', 'a state without its transaction cookie');
  });

  test('the proxy refuses without X-CSRF, cross-site, with no route, a method not in the route, or no session', async () => {
    const requestsBefore = stack.demoApi.stats.requests;
    const anonymous = new BrowserClient(stack.url);
    const cases: Array<[string, string, RequestInit, number, string]> = [
      ['no X-CSRF', '/api/demo/x', { headers: { cookie: alice.cookieHeader() } }, 403, 'csrf'],
      ['no X-CSRF on POST', '/api/demo/x', { method: 'POST', body: '{}', headers: { cookie: alice.cookieHeader() } }, 403, 'csrf'],
      ['a foreign Origin', '/api/demo/x', { headers: { 'x-csrf': '1', origin: 'https://evil.example', cookie: alice.cookieHeader() } }, 403, 'csrf'],
      ['Sec-Fetch-Site: cross-site', '/api/demo/x', { headers: { 'x-csrf': '1', 'sec-fetch-site': 'cross-site', cookie: alice.cookieHeader() } }, 403, 'csrf'],
      ['no route', '/api/nothing/here', { headers: { 'x-csrf': '1', cookie: alice.cookieHeader() } }, 404, 'not_found'],
      ['a prefix that is no segment boundary', '/api/demonstration', { headers: { 'x-csrf': '1', cookie: alice.cookieHeader() } }, 404, 'not_found'],
      ['a method not in the route', '/api/reports/x', { method: 'POST', body: '{}', headers: { 'x-csrf': '1', cookie: alice.cookieHeader() } }, 405, 'method_not_allowed'],
      ['DELETE on a GET/POST route', '/api/demo/x', { method: 'DELETE', headers: { 'x-csrf': '1', cookie: alice.cookieHeader() } }, 405, 'method_not_allowed'],
    ];
    for (const [what, path, init, status, code] of cases) {
      const response = await anonymous.fetch(path, init);
      assertError(await fromResponse(response), status, code, what);
      if (status === 405) assert.ok(response.headers.get('allow'), `${what}: Allow`);
    }
    const noSession = await anonymous.api('/api/demo/x');
    assertError(await fromResponse(noSession), 401, 'unauthenticated', 'no session');
    assert.equal(stack.demoApi.stats.requests, requestsBefore, 'nothing refused reached the demo API');

    // `/api` and `/api/` name no route: the contract's 404 (under `next start` Next.js
    // first redirects the trailing slash away, route-handlers.test.ts).
    for (const path of ['/api', '/api/']) {
      const bare = await raw(path, { headers: { 'x-csrf': '1', cookie: alice.cookieHeader() } });
      assertError(fromRaw(bare), 404, 'not_found', path);
    }
  });

  test('the proxy attaches a token per route: each API sees its own audience, the browser never a token', async () => {
    const demo = await alice.api('/api/demo/whoami?x=1');
    assert.equal(demo.status, 200);
    const demoText = await demo.text();
    assertNoSecrets(demoText, 'the demo API answer');
    const demoBody = JSON.parse(demoText) as Record<string, unknown>;
    assert.equal(demoBody.api, 'demo');
    assert.equal(demoBody.path, '/whoami');
    assert.equal(demoBody.audience, stack.demoAudience);
    assert.equal(demoBody.scope, 'demo:read');
    assert.equal(demoBody.subject, 'user-alice');
    rememberCookies(demo);

    const reports = await alice.api('/api/reports/summary');
    assert.equal(reports.status, 200);
    const reportsText = await reports.text();
    assertNoSecrets(reportsText, 'the reports API answer');
    const reportsBody = JSON.parse(reportsText) as Record<string, unknown>;
    assert.equal(reportsBody.api, 'reports');
    assert.equal(reportsBody.audience, stack.reportsAudience);
    assert.equal(reportsBody.scope, 'reports:read');
    rememberCookies(reports);

    const post = await alice.api('/api/demo/items', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(post.status, 200);
    assert.equal(((await post.json()) as Record<string, unknown>).method, 'POST');
  });

  test('path escapes sent raw are refused (400 or 404), never forwarded, never a 500', async () => {
    // Every fixture payload that can be sent reaches the front door byte for byte (no URL
    // parser in between, unlike Next.js's route runtime) and must be refused as sent.
    const fromFixtures = SENDABLE_FIXTURES;
    const payloads = [
      '/api/demo/..%2f..%2fetc',
      '/api/demo/..;/x',
      '/api/demo//evil.com',
      '/api/demo/a%5cb',
      '/api/demo/%252e%252e/x',
      '/api/demo/..%5Cx',
      '/api/demo/%2F',
      '/api/demo/%0d%0aHost:%20evil',
      '/api/demo/%C0%AE%C0%AE/x',
      '/api/demo/%FF',
      '/api/demo/%E2%80%A5',
      '/api/demo/%61dmin',
      ...fromFixtures.map((p) => `/api/demo${p}`),
    ];
    const requestsBefore = stack.demoApi.stats.requests;
    const redirected: string[] = [];
    for (const path of new Set(payloads)) {
      const answer = await rawApi(path);
      if (path.includes('//')) redirected.push(path);
      assert.ok(answer.status === 400 || answer.status === 404, `${path}: status ${answer.status} ${answer.body.slice(0, 120)}`);
      assertError(fromRaw(answer), answer.status, answer.status === 400 ? 'invalid_request' : 'not_found', path);
    }
    assert.equal(stack.demoApi.stats.requests, requestsBefore, 'no escape attempt reached the demo API');
    // Under `next start` Next.js answers these with a 308 to the collapsed path; the front
    // door sees them raw and refuses them like any other escape.
    assert.ok(redirected.length > 0, 'the // payloads were seen');
  });

  test('dot segments sent raw are refused by the front door, never resolved or forwarded', async () => {
    // A browser resolves `.`/`..` before it sends a request, so a raw dot segment comes
    // from a script or a tool. Under `next start` Next.js resolves it (`/api/demo/../reports/x`
    // becomes the reports route, route-handlers.test.ts); the front door forwards the path
    // as sent or not at all: 400, and no API sees it.
    const demoBefore = stack.demoApi.stats.requests;
    const reportsBefore = stack.reportsApi.stats.requests;
    const payloads = ['/api/demo/../reports/x', '/api/demo/%2e%2e/reports/y', '/api/demo/.%2E/reports/z', '/api/demo/./../reports/w', '/api/demo/../../healthz'];
    for (const payload of SENDABLE_FIXTURES) if (parsedPath(`/api/demo${payload}`) !== `/api/demo${payload}`) payloads.push(`/api/demo${payload}`);
    for (const path of payloads) {
      const answer = await rawApi(path);
      assert.ok(answer.status === 400 || answer.status === 404, `${path}: ${answer.status} ${answer.body.slice(0, 120)}`);
      assertError(fromRaw(answer), answer.status, answer.status === 400 ? 'invalid_request' : 'not_found', path);
    }
    assert.equal(stack.demoApi.stats.requests, demoBefore, 'the demo API saw none of them');
    assert.equal(stack.reportsApi.stats.requests, reportsBefore, 'the reports API saw none of them');
    const denied = await raw('/api/demo/../reports/x', { headers: { cookie: alice.cookieHeader() } });
    assertError(fromRaw(denied), 403, 'csrf', 'CSRF is checked before anything else');
  });

  test('TRACE never reaches an API: 405 with Allow', async () => {
    const requestsBefore = stack.demoApi.stats.requests;
    const answer = await rawApi('/api/demo/x', alice, 'TRACE');
    assert.equal(answer.status, 405, `TRACE answered ${answer.status}`);
    assert.ok(answer.headers.allow, 'the 405 names what is allowed');
    assertError(fromRaw(answer), 405, 'method_not_allowed', 'TRACE');
    assertNoSecrets(answer.body, 'the TRACE answer');
    assert.equal(stack.demoApi.stats.requests, requestsBefore);
  });

  test('x-middleware-subrequest bypasses nothing (CVE-2025-29927)', async () => {
    const requestsBefore = stack.demoApi.stats.requests;
    const values = [
      'middleware',
      'middleware:middleware:middleware:middleware:middleware',
      'src/middleware:src/middleware:src/middleware:src/middleware:src/middleware',
      'proxy:proxy:proxy:proxy:proxy',
      'src/proxy:src/proxy:src/proxy:src/proxy:src/proxy',
      'pages/_middleware',
    ];
    for (const value of values) {
      const noCsrf = await raw('/api/demo/x', { headers: { 'x-middleware-subrequest': value, cookie: alice.cookieHeader() } });
      assertError(fromRaw(noCsrf), 403, 'csrf', `${value}: /api without X-CSRF`);
      const noSession = await raw('/api/demo/x', { headers: { 'x-middleware-subrequest': value, 'x-csrf': '1' } });
      assertError(fromRaw(noSession), 401, 'unauthenticated', `${value}: /api without a session`);
      const session = await raw('/auth/session', { headers: { 'x-middleware-subrequest': value, cookie: alice.cookieHeader() } });
      assertError(fromRaw(session), 403, 'csrf', `${value}: /auth/session without X-CSRF`);
      const logout = await raw('/auth/logout', { method: 'POST', headers: { 'x-middleware-subrequest': value, origin: 'https://evil.example', cookie: alice.cookieHeader() } });
      assertError(fromRaw(logout), 403, 'csrf', `${value}: cross-origin logout`);
      // proxy.ts (which refuses undecodable paths) cannot be skipped either.
      const undecodable = await raw('/api/demo/%FF', { headers: { 'x-middleware-subrequest': value, 'x-csrf': '1', cookie: alice.cookieHeader() } });
      assertError(fromRaw(undecodable), 400, 'invalid_request', `${value}: an undecodable path`);
    }
    assert.equal(stack.demoApi.stats.requests, requestsBefore);
    const still = await alice.api('/auth/session');
    assert.equal(((await still.json()) as { authenticated: boolean }).authenticated, true, 'alice is still signed in');
  });

  test('a tampered, foreign or garbled session cookie reads as no session, never a 500', async () => {
    // The session may be one cookie or chunks (`cloakroom.0`, `cloakroom.1`, …) once it holds
    // a token per API; tampering with the first part breaks the seal either way.
    const family = sessionCookies(alice);
    assert.ok(family.length > 0, `alice's session cookie (jar: ${alice.jar.names().join(', ')})`);
    const [firstName, genuine] = family[0] as [string, string];
    const rest = family.slice(1).map(([name, value]) => `; ${name}=${value}`).join('');
    const middle = Math.floor(genuine.length / 2);
    const flipped = `${firstName}=${genuine.slice(0, middle)}${genuine[middle] === 'A' ? 'B' : 'A'}${genuine.slice(middle + 1)}${rest}`;
    const foreign = await sealData({ v: 1, id: 'x', sub: 'user-alice' }, { password: 'a-completely-different-secret-0123456789' });
    const variants: Array<[string, string]> = [
      ['one character flipped', flipped],
      ['truncated', `${firstName}=${genuine.slice(0, genuine.length - 20)}`],
      ['sealed with another secret', `${SESSION_COOKIE}=${foreign}`],
      ['not a seal', `${SESSION_COOKIE}=hello`],
      ['percent garbage', `${SESSION_COOKIE}=%%%ff%00`],
      ['a chunk without its siblings', `${SESSION_COOKIE}.1=${genuine.slice(0, 100)}`],
      ['chunks of garbage', `${SESSION_COOKIE}.0=abc; ${SESSION_COOKIE}.1=def`],
    ];
    for (const [what, cookie] of variants) {
      const session = await raw('/auth/session', { headers: { 'x-csrf': '1', cookie } });
      assert.equal(session.status, 200, `${what}: /auth/session status`);
      assert.equal(session.headers['cache-control'], 'no-store');
      assert.deepEqual(JSON.parse(session.body), { authenticated: false }, what);
      const api = await raw('/api/demo/x', { headers: { 'x-csrf': '1', cookie } });
      assertError(fromRaw(api), 401, 'unauthenticated', `${what}: /api`);
    }
    const flippedAnswer = await raw('/auth/session', { headers: { 'x-csrf': '1', cookie: flipped } });
    const cleared = [flippedAnswer.headers['set-cookie'] ?? []].flat();
    for (const [name] of family) {
      assert.ok(cleared.some((c) => c.startsWith(`${name}=;`) && /Max-Age=0/.test(c)), `the dead cookie ${name} is cleared`);
    }
  });

  test('POST /auth/backchannel-logout: 400 for a missing or invalid logout_token, never cached', async () => {
    const cases: Array<[string, string]> = [
      ['no logout_token', ''],
      ['not a JWT', 'logout_token=hello'],
      ['an unsigned JWT', `logout_token=${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"iss":"x"}').toString('base64url')}.`],
    ];
    for (const [what, body] of cases) {
      const response = await fetch(`${stack.url}/auth/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      assertError(await fromResponse(response), 400, 'invalid_request', what);
    }
  });

  test('POST /auth/logout: same-origin only; revokes, clears the cookie, 303 to end_session; the old cookie is dead', async () => {
    const client = new BrowserClient(stack.url);
    await signIn(client);
    const oldCookie = client.cookieHeader();
    const refused: Array<[string, Record<string, string>]> = [
      ['a foreign Origin', { origin: 'https://evil.example' }],
      ['Origin null', { origin: 'null' }],
      ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
      ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
      ['no Origin, no Sec-Fetch-Site', {}],
    ];
    for (const [what, headers] of refused) {
      const response = await client.fetch('/auth/logout', { method: 'POST', headers });
      assertError(await fromResponse(response), 403, 'csrf', what);
      assert.equal(response.headers.getSetCookie().length, 0, `${what}: the cookie is kept`);
    }
    assert.equal(((await (await client.api('/auth/session')).json()) as { authenticated: boolean }).authenticated, true, 'refused logouts left the session');

    const revokedBefore = stack.idp.stats.grantsRevoked;
    const response = await client.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url } });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, `${stack.idp.issuer}/session/end`);
    assert.equal(location.searchParams.get('post_logout_redirect_uri'), `${stack.url}/`);
    assert.ok(location.searchParams.get('state'), 'state');
    // OIDC_END_SESSION_HINT=client_id (default): the client is named, no ID token in the URL (AUDIT.md L10).
    assert.equal(location.searchParams.get('client_id'), CLIENT_ID, 'client_id');
    assert.equal(location.searchParams.get('id_token_hint'), null, 'no id_token_hint');
    const cleared = response.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=;`));
    assert.ok(cleared, 'the session cookie is cleared');
    assert.match(cleared, /Max-Age=0/);
    assert.match(cleared, /; Path=\//);
    assert.match(cleared, /; HttpOnly/);
    assert.match(cleared, /; SameSite=Strict/);
    assert.ok(stack.idp.stats.grantsRevoked > revokedBefore, 'the refresh token was revoked at the provider');

    const replay = await raw('/auth/session', { headers: { 'x-csrf': '1', cookie: oldCookie } });
    assert.deepEqual(JSON.parse(replay.body), { authenticated: false }, 'a copy of the old cookie is dead');
    const replayApi = await raw('/api/demo/x', { headers: { 'x-csrf': '1', cookie: oldCookie } });
    assertError(fromRaw(replayApi), 401, 'unauthenticated', 'the old cookie at /api');
  });

  test('the server logs hold no token, client secret, session secret or cookie value', () => {
    const logs = `${stack.serverStdout()}\n${stack.serverStderr()}`;
    assert.ok(stack.issuedTokens.length >= 6, `tokens were issued (${stack.issuedTokens.length})`);
    assert.match(logs, /"event":"sign_in"/, 'the broker did log (at debug level), so the check means something');
    for (const cookie of alice.cookieHeader().split('; ')) cookieValues.add(cookie.slice(cookie.indexOf('=') + 1));
    const secrets: Array<[string, string]> = [
      ...stack.issuedTokens.map((t, i): [string, string] => [`issued token #${i}`, t]),
      ['the client secret', stack.clientSecret],
      ['the session secret', stack.sessionSecret],
      ...[...cookieValues].filter((v) => v.length >= 16).map((v, i): [string, string] => [`cookie value #${i}`, v]),
    ];
    for (const [what, secret] of secrets) assert.ok(!logs.includes(secret), `the logs hold ${what}`);
    assert.doesNotMatch(logs, JWT, 'the logs hold a JWT');
    assert.doesNotMatch(logs, /Fe26\.2\*/, 'the logs hold an iron seal');
    // pino's lines (lib/log.ts): every JSON line parses; lines written for a request carry
    // a well-formed request id; no field holds a user's full address (rate limits log a /24 or /48).
    const lines = stack
      .serverStderr()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(lines.some((line) => line.event === 'sign_in' && typeof line.requestId === 'string'), 'a request\'s lines carry its request id');
    for (const line of lines) {
      if (line.requestId !== undefined) assert.match(String(line.requestId), /^[A-Za-z0-9._:-]{1,128}$/, JSON.stringify(line));
      for (const value of Object.values(line)) assert.ok(!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(String(value)), `a field holds the client's address: ${JSON.stringify(line)}`);
    }
  });
});
