/**
 * AUDIT L14: a refused APP_BASE_URL or OIDC_ISSUER was quoted in the error (`got "…"`),
 * and configuration errors end up in logs: a secret pasted into the wrong variable was
 * printed. Every variable is tried here with a secret-looking value that it refuses.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';
import { envSchema } from '../../lib/config/schema.ts';

const ENV = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'AkF8ghWPcTrwdUlWSfwLoKao0hq+PpdFhx6zaSlvUp4=',
};
/** Looks like what gets pasted by mistake: a client secret or an API key. */
const PASTED_SECRET = 'sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0';

it('no refusal, of any variable, repeats the value it refuses', () => {
  let refused = 0;
  for (const name of Object.keys(envSchema.shape)) {
    for (const value of [PASTED_SECRET, `x${PASTED_SECRET}`, `https://${PASTED_SECRET}@id.example.com/?key=${PASTED_SECRET}`]) {
      try {
        loadConfig({ ...ENV, [name]: value });
      } catch (error) {
        assert.ok(error instanceof ConfigError, `${name}: ${String(error)}`);
        refused++;
        for (const problem of error.problems) assert.ok(!problem.includes(PASTED_SECRET), `${name} echoed its value: ${problem}`);
      }
    }
  }
  assert.ok(refused >= 10, `only ${refused} refusals were tried`);
});

it('APP_BASE_URL and OIDC_ISSUER say what is wrong without the value', () => {
  assert.throws(
    () => loadConfig({ ...ENV, APP_BASE_URL: PASTED_SECRET, OIDC_ISSUER: PASTED_SECRET }),
    (error: unknown) =>
      error instanceof ConfigError &&
      error.problems.some((p) => p.startsWith('APP_BASE_URL must be an absolute http(s) origin')) &&
      error.problems.some((p) => p.startsWith('OIDC_ISSUER must be an absolute https URL')) &&
      !error.message.includes(PASTED_SECRET),
  );
});
