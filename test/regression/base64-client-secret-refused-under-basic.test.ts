/**
 * Issue 13, point 3: a client secret from `openssl rand -base64` holds `+`, `/` and `=`.
 * openid-client form-encodes the Basic credentials as RFC 6749 §2.3.1 says, and a
 * provider that compares them as sent (glewlwyd) refuses them: sign-in failed. The
 * broker offers `OIDC_CLIENT_AUTH=client_secret_basic_unencoded` for such providers.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';
import { providerHealth } from '../../lib/oidc/provider.ts';
import { sessionOf } from '../helpers/core.ts';
import { base64SecretWithSpecials, startQuirkStack, type QuirkStack } from '../helpers/quirk-provider.ts';

let stack: QuirkStack;
const secret = base64SecretWithSpecials();
before(async () => {
  stack = await startQuirkStack({
    quirks: { basicCredentialsNotDecoded: true },
    client: { client_secret: secret },
    env: { OIDC_CLIENT_SECRET: secret },
  });
});
after(() => stack?.close());

test('form-encoded Basic credentials are refused by a provider that compares them as sent, and the operator is told', async () => {
  stack.configure({ OIDC_CLIENT_AUTH: 'client_secret_basic' });
  // The provider supports PAR, so the refusal comes at the pushed authorization request.
  const login = await stack.newBrowser().fetch('/auth/login');
  assert.equal(login.status, 503, 'the quirk is real: the encoded secret does not match');
  assert.equal(providerHealth().status, 'misconfigured');
  assert.match(String(providerHealth().problem), /client_secret_basic_unencoded/);
});

test('client_secret_basic_unencoded signs in with a secret holding "+", "/" and "="', async () => {
  stack.configure({ OIDC_CLIENT_AUTH: 'client_secret_basic_unencoded' });
  const browser = stack.newBrowser();
  const callback = await browser.signIn();
  assert.equal(callback.status, 303, `sign-in answered ${callback.status}`);
  assert.equal((await sessionOf(browser)).authenticated, true);
});

test('a secret holding ":" cannot be sent unencoded: the configuration says so, naming the variable, not the value', () => {
  const env = { ...process.env, OIDC_CLIENT_AUTH: 'client_secret_basic_unencoded', OIDC_CLIENT_SECRET: 'part-one:part-two-of-a-secret' };
  assert.throws(() => loadConfig(env), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    const problem = error.problems.find((p) => p.includes('client_secret_basic_unencoded'));
    assert.match(String(problem), /containing ":": use client_secret_post/);
    assert.equal(error.message.includes('part-one'), false, 'the secret is never echoed');
    return true;
  });
});
