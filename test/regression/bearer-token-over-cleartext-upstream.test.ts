/**
 * What broke (L5): a route with `auth` `required` or `optional` accepted an `http:`
 * upstream on any host, so users' bearer tokens crossed the network in cleartext, while
 * `APP_BASE_URL` and `OIDC_ISSUER` already refused `http:` off loopback. Such a route
 * is now refused at start, with a message naming the route, BFF_ALLOW_INSECURE_UPSTREAM
 * and the fix; loopback and `auth: none` stay allowed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';

const ENV = {
  APP_BASE_URL: 'https://app.example.com',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
};

const routes = (upstream: string, auth: string) => JSON.stringify([{ path: '/api/orders', upstream, auth }]);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
}

test('an http upstream off loopback on a token-carrying route is refused, naming the route, the variable and the fix', () => {
  for (const auth of ['required', 'optional']) {
    const found = problems({ ...ENV, BFF_ROUTES: routes('http://orders.internal:8080/v1', auth) });
    assert.equal(found.length, 1, found.join('\n'));
    const [problem] = found as [string];
    assert.match(problem, /^BFF_ROUTES route\[0\]\.upstream: /);
    assert.match(problem, /"\/api\/orders"/);
    assert.match(problem, /BFF_ALLOW_INSECURE_UPSTREAM=true/);
    assert.match(problem, /https/);
    assert.doesNotMatch(problem, /orders\.internal/, 'the value is not echoed');
  }
});

test('loopback, auth none and BFF_ALLOW_INSECURE_UPSTREAM=true are accepted', () => {
  assert.deepEqual(problems({ ...ENV, BFF_ROUTES: routes('http://127.0.0.1:3002', 'required') }), []);
  assert.deepEqual(problems({ ...ENV, BFF_ROUTES: routes('http://localhost:3002', 'optional') }), []);
  assert.deepEqual(problems({ ...ENV, BFF_ROUTES: routes('http://orders.internal', 'none') }), []);
  assert.deepEqual(problems({ ...ENV, BFF_ROUTES: routes('http://orders.internal', 'required'), BFF_ALLOW_INSECURE_UPSTREAM: 'true' }), []);
  assert.deepEqual(problems({ ...ENV, BFF_ROUTES: routes('https://orders.internal', 'required') }), []);
});
