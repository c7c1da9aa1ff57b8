/**
 * AUDIT L14: REFRESH_GRACE_PERIOD took up to a year. For that long any stale copy of a
 * session cookie, a stolen one included, adopts the live tokens without the provider
 * ever seeing a reuse. It is capped at 120 s, and the refusal says why.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';

const ENV = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'AkF8ghWPcTrwdUlWSfwLoKao0hq+PpdFhx6zaSlvUp4=',
};

it('accepts 120 seconds, refuses 121 and a year, saying why', () => {
  assert.equal(loadConfig({ ...ENV, REFRESH_GRACE_PERIOD: '120' }).tokens.refreshGrace, 120);
  for (const value of ['121', '31536000']) {
    assert.throws(
      () => loadConfig({ ...ENV, REFRESH_GRACE_PERIOD: value }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.problems.length === 1 &&
        /^REFRESH_GRACE_PERIOD must be between 1 and 120 seconds: for that long a stale or stolen copy of the cookie adopts the live tokens/.test(
          error.problems[0] as string,
        ),
      value,
    );
  }
});
