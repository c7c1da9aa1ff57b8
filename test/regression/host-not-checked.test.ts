/**
 * AUDIT L11: the broker never looked at `Host`, so a DNS-rebinding page
 * (`attacker.example` rebound to the broker's address) could drive a victim's browser
 * into the `auth: none` routes from inside the network: `Host: evil.example` was
 * forwarded. Now every broker endpoint answers 400 `invalid_request` unless `Host` is
 * APP_BASE_URL's host, compared exactly.
 *
 * Through the real production server (`next start`), whose APP_BASE_URL is
 * `http://localhost:<port>`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const API: Array<[string, string]> = [['X-CSRF', '1'], ['Sec-Fetch-Site', 'same-origin']];

describe('Host is checked against APP_BASE_URL', () => {
  let stack: ProductionStack;
  let up: TestUpstream;

  before(async () => {
    up = await startUpstream();
    stack = await startProductionStack({
      env: { BFF_ROUTES: JSON.stringify([{ path: '/api/open', upstream: `${up.url}/v1`, auth: 'none' }]) },
    });
  });
  after(async () => {
    await stack?.close();
    await up?.close();
  });

  const requests: Array<{ method: string; path: string; headers: Array<[string, string]>; body?: string; ok: number }> = [
    { method: 'GET', path: '/api/open/internal', headers: API, ok: 200 },
    { method: 'GET', path: '/auth/login', headers: [], ok: 302 },
    { method: 'GET', path: '/auth/session', headers: API, ok: 200 },
    { method: 'POST', path: '/auth/logout', headers: [['Origin', 'http://evil.example']], ok: 403 },
    { method: 'POST', path: '/auth/backchannel-logout', headers: [['Content-Type', 'application/x-www-form-urlencoded']], body: 'logout_token=x', ok: 400 },
  ];

  for (const host of ['evil.example', `evil.example:PORT`, '127.0.0.1:PORT', 'localhost']) {
    test(`Host: ${host} is refused on every endpoint, and nothing reaches the API`, async () => {
      up.reset();
      for (const r of requests) {
        const answer = await rawRequest(stack.url, { method: r.method, path: r.path, headers: [['Host', host.replace('PORT', String(stack.port))], ...r.headers], body: r.body });
        assert.equal(answer.status, 400, `${r.method} ${r.path}`);
        assert.equal(answer.headers['cache-control'], 'no-store');
        assert.equal((JSON.parse(answer.body.toString()) as { error: string }).error, 'invalid_request', `${r.method} ${r.path}`);
        assert.equal(answer.headers.location, undefined, 'no redirect to the provider');
      }
      assert.equal(up.records.length, 0);
    });
  }

  test('the configured host is served as before', async () => {
    up.reset();
    for (const r of requests) {
      const answer = await rawRequest(stack.url, { method: r.method, path: r.path, headers: [['Host', `localhost:${stack.port}`], ...r.headers], body: r.body });
      assert.equal(answer.status, r.ok, `${r.method} ${r.path}: ${answer.body.toString().slice(0, 200)}`);
    }
    assert.equal(up.records.length, 1);
  });

  test('/healthz answers whatever the Host (load balancers probe by address)', async () => {
    const answer = await rawRequest(stack.url, { path: '/healthz', headers: [['Host', '10.0.0.7:3000']] });
    assert.equal(answer.status, 200);
  });

  test('/readyz answers a probe that names the instance by address (Kubernetes, load balancers)', async () => {
    const answer = await rawRequest(stack.url, { path: '/readyz', headers: [['Host', '10.0.0.7:3000']] });
    assert.equal(answer.status, 200, answer.body.toString().slice(0, 200));
    assert.equal(JSON.parse(answer.body.toString()).status, 'ready');
  });
});
