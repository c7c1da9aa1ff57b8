/**
 * An API that cannot be reached or does not answer in time (CONTRACT.md: 502
 * `upstream_unavailable`, 504 `upstream_timeout`). Real sockets: a port nothing listens
 * on (refused), a server that resets every connection, an upstream slower than the
 * route's `timeoutMs`. Never a 500, and the session is never the casualty: the cookie
 * is not cleared and the next call works.
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { rawRequest } from '../../helpers/raw-http.ts';
import { closedPort, startResettingServer, startUpstream, type ResettingServer, type TestUpstream } from '../../helpers/upstream.ts';

let stack: Stack;
let up: TestUpstream;
let resetting: ResettingServer;
let alice: BrowserClient;

before(async () => {
  up = await startUpstream();
  resetting = await startResettingServer();
  const refused = await closedPort();
  stack = await startStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/refused', upstream: `http://127.0.0.1:${refused}/v1`, auth: 'required' },
        { path: '/api/refused-open', upstream: `http://127.0.0.1:${refused}`, auth: 'none' },
        { path: '/api/reset', upstream: `${resetting.url}/v1`, auth: 'required' },
        { path: '/api/slow', upstream: `${up.url}/v1`, auth: 'required', timeoutMs: 300 },
        { path: '/api/patient', upstream: `${up.url}/v1`, auth: 'required', timeoutMs: 3_000 },
      ]),
    },
  });
  alice = stack.newBrowser();
  assert.equal((await alice.signIn('alice')).status, 303);
});

after(async () => {
  await stack?.close();
  await up?.close();
  await resetting?.close();
});

async function assertError(response: Response, status: number, code: string): Promise<void> {
  assert.equal(response.status, status, `expected ${status} ${code}, got ${response.status}`);
  assert.deepEqual(((await response.json()) as { error: string }).error, code);
  assert.equal(response.headers.get('cache-control'), 'no-store');
  // A write of the session also expires the family's other names; only expiry alone clears it.
  const cookies = response.headers.getSetCookie();
  const expired = cookies.filter((c) => /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(c));
  assert.ok(expired.length === 0 || expired.length < cookies.length, 'the session cookie must not be cleared');
}

async function assertSessionAlive(): Promise<void> {
  const session = await alice.api('/auth/session');
  assert.equal(((await session.json()) as { authenticated: boolean }).authenticated, true, 'the session survives');
  up.reset();
  const call = await alice.api('/api/patient/echo');
  assert.equal(call.status, 200, 'and the next call works');
}

describe('the API cannot be reached', () => {
  test('connection refused: 502 upstream_unavailable', async () => {
    await assertError(await alice.api('/api/refused/x'), 502, 'upstream_unavailable');
    await assertSessionAlive();
  });

  test('connection refused with a request body: 502, not a 500', async () => {
    const response = await alice.api('/api/refused/x', { method: 'POST', body: 'x'.repeat(256 * 1024) });
    await assertError(response, 502, 'upstream_unavailable');
  });

  test('connection refused on a route without auth: 502', async () => {
    await assertError(await stack.newBrowser().api('/api/refused-open/x'), 502, 'upstream_unavailable');
  });

  test('connection reset: 502 upstream_unavailable', async () => {
    const before = resetting.connections;
    await assertError(await alice.api('/api/reset/x'), 502, 'upstream_unavailable');
    assert.ok(resetting.connections > before, 'the request did reach the resetting server');
    await assertError(await alice.api('/api/reset/x', { method: 'POST', body: 'payload' }), 502, 'upstream_unavailable');
    await assertSessionAlive();
  });
});

describe("the browser's connection outlives a failed upload", () => {
  // Regression: the broker answered 502 without reading the rest of the upload, and the
  // browser's next request on that keep-alive connection hung until the server gave up.
  for (const route of ['/api/refused-open', '/api/reset']) {
    test(`${route}: the next request on the same keep-alive connection is answered at once`, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const headers: Array<[string, string]> = [
          ['X-CSRF', '1'],
          ['Cookie', alice.cookieHeader()],
        ];
        const first = await rawRequest(stack.broker.url, { method: 'POST', path: `${route}/upload`, headers, body: Buffer.alloc(1024 * 1024, 7), agent });
        assert.equal(first.status, 502);
        const started = Date.now();
        const second = await rawRequest(stack.broker.url, {
          method: 'POST',
          path: `${route}/again`,
          headers,
          body: 'small',
          agent,
          signal: AbortSignal.timeout(2_000),
        });
        assert.equal(second.status, 502);
        assert.ok(Date.now() - started < 1_000);
      } finally {
        agent.destroy();
      }
    });
  }
});

describe('the API is too slow', () => {
  test('no answer within timeoutMs: 504 upstream_timeout, soon after the timeout, and the upstream request is given up', async () => {
    up.reset();
    const started = Date.now();
    const response = await alice.api('/api/slow/slow?ms=3000');
    const took = Date.now() - started;
    await assertError(response, 504, 'upstream_timeout');
    assert.ok(took >= 250 && took < 2_000, `answered after ${took} ms for a 300 ms timeout`);
    const record = await up.waitFor((r) => r.url.startsWith('/v1/slow') && r.closedAt !== undefined, 2_000);
    assert.equal(record.aborted, true, 'the broker closed its upstream request');
    await assertSessionAlive();
  });

  test('an upstream that never answers: 504', async () => {
    up.reset();
    await assertError(await alice.api('/api/slow/hang'), 504, 'upstream_timeout');
    const record = await up.waitFor((r) => r.url === '/v1/hang' && r.closedAt !== undefined, 2_000);
    assert.equal(record.aborted, true);
  });

  test('an answer within timeoutMs is passed through', async () => {
    const response = await alice.api('/api/patient/slow?ms=400');
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { slept: 400 });
  });

  test('the timeout is per route: the same delay is fine on a patient route, 504 on a hasty one', async () => {
    const [hasty, patient] = await Promise.all([alice.api('/api/slow/slow?ms=800'), alice.api('/api/patient/slow?ms=800')]);
    await assertError(hasty, 504, 'upstream_timeout');
    assert.equal(patient.status, 200);
    await patient.body?.cancel();
  });
});

describe('no failure is a 500', () => {
  test('refused, reset, timeout, in parallel', async () => {
    const responses = await Promise.all([
      alice.api('/api/refused/a'),
      alice.api('/api/reset/a'),
      alice.api('/api/slow/slow?ms=2000'),
      alice.api('/api/refused/b', { method: 'PUT', body: 'x' }),
      alice.api('/api/reset/b', { method: 'DELETE' }),
    ]);
    assert.deepEqual(
      responses.map((r) => r.status),
      [502, 502, 504, 502, 502],
    );
    await Promise.all(responses.map((r) => r.body?.cancel()));
    await assertSessionAlive();
  });
});
