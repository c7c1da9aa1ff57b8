/**
 * AUDIT L6: with BFF_ROUTES forgotten, a production broker used the demo route table and
 * forwarded users' access tokens to whatever listened on localhost:3002 and :3003. Behind
 * a public APP_BASE_URL the broker now refuses to start, naming BFF_ROUTES; on loopback the
 * demo table stays the default (CONTRACT.md).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';

const ENV = {
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'AkF8ghWPcTrwdUlWSfwLoKao0hq+PpdFhx6zaSlvUp4=',
};

it('refuses the demo routes behind a public origin, naming BFF_ROUTES and the fix', () => {
  for (const unset of [{}, { BFF_ROUTES: '' }]) {
    assert.throws(
      () => loadConfig({ ...ENV, APP_BASE_URL: 'https://app.example.com', ...unset }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.length === 1 &&
        /^BFF_ROUTES \(or BFF_ROUTES_FILE\) is required when APP_BASE_URL is not localhost: .*localhost:3002.*BFF_ROUTES=\[\] for none$/.test(error.problems[0] as string),
    );
  }
});

it('an explicit table, even an empty one, is accepted behind a public origin', () => {
  assert.deepEqual(loadConfig({ ...ENV, APP_BASE_URL: 'https://app.example.com', BFF_ROUTES: '[]' }).routes, []);
});

it('on loopback the demo routes remain the default', () => {
  for (const origin of ['http://localhost:3000', 'http://127.0.0.1:3000', 'http://[::1]:3000']) {
    const routes = loadConfig({ ...ENV, APP_BASE_URL: origin }).routes;
    assert.deepEqual(routes.map((r) => r.upstream.href).sort(), ['http://localhost:3002/', 'http://localhost:3003/'], origin);
  }
});
