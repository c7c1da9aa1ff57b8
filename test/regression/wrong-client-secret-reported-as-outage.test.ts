/**
 * Issue 13, point 9: a wrong client secret — `invalid_client`, or a bare 401 with
 * `WWW-Authenticate: Basic` — was logged as "identity provider unavailable", so an
 * operator chased an outage. It is a configuration error: the log says which variables
 * to check, and the provider's health (what `/readyz` reads) says `misconfigured`. The
 * browser still gets 503 idp_unavailable and keeps its session: the grant may be fine,
 * and once the secret is fixed every session resumes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { providerHealth } from '../../lib/oidc/provider.ts';
import { sessionOf, sleep } from '../helpers/core.ts';
import { logsOf, signedIn, UNTIL_STALE_MS } from '../helpers/quirk-contract.ts';
import { startQuirkStack, type QuirkStack } from '../helpers/quirk-provider.ts';

let stack: QuirkStack;
before(async () => {
  stack = await startQuirkStack({ quirks: { clientRefused: 'bare_basic_challenge' } });
});
after(() => stack?.close());

test('a bare 401 Basic challenge on refresh: logged and reported as a client configuration error, session kept', async () => {
  const browser = await signedIn(stack);
  stack.configure({ OIDC_CLIENT_SECRET: 'not-the-secret-the-provider-registered' });
  await sleep(UNTIL_STALE_MS);

  const lines = await logsOf(async () => {
    const answer = await browser.api('/api/echo/x');
    assert.equal(answer.status, 503);
    assert.equal(((await answer.json()) as { error: string }).error, 'idp_unavailable');
  });
  const told = lines.find((line) => line.event === 'idp_client_rejected');
  assert.ok(told, `an idp_client_rejected line among ${lines.map((l) => l.event).join(', ')}`);
  assert.equal(told.level, 'error');
  assert.match(String(told.problem), /refused the client's credentials: check OIDC_CLIENT_ID \/ OIDC_CLIENT_SECRET \/ OIDC_CLIENT_AUTH/);
  assert.equal(JSON.stringify(lines).includes('not-the-secret'), false, 'the secret is never logged');

  const health = providerHealth();
  assert.equal(health.status, 'misconfigured');
  assert.match(String(health.problem), /OIDC_CLIENT_SECRET/);
  assert.equal((await sessionOf(browser)).authenticated, true, 'the session is kept');
});
