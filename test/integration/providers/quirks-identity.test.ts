/**
 * The providers quirks matrix (see quirks.test.ts), part 3: who signs and who says what.
 * ID and logout tokens signed ES256, PS256, EdDSA; issuers with and without a trailing
 * slash, configured right and wrong; claims only at UserInfo; Basic credentials compared
 * as sent; logout tokens without `exp`.
 *
 * [A]: passes once helper A's back-channel work (issue 13 point 1) is merged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { providerHealth } from '../../../lib/oidc/provider.ts';
import { contractHolds, group, issuedIdToken, logsOf, signedIn } from '../../helpers/quirk-contract.ts';

group('claims only at UserInfo (OpenID Connect Core §5.4)', { idp: { claimsOnlyAtUserInfo: true } }, (get) => {
  test('name and email come from UserInfo at sign-in', async () => {
    await contractHolds(get());
  });
});

for (const alg of ['ES256', 'PS256', 'EdDSA'] as const) {
  group(`ID tokens and logout tokens signed ${alg}`, { idTokenAlg: alg, env: { OIDC_END_SESSION_HINT: 'id_token' } }, (get) => {
    test(`the contract holds with ${alg}`, async () => {
      const browser = await signedIn(get());
      const idToken = await issuedIdToken(get(), browser);
      assert.equal(JSON.parse(Buffer.from(idToken.split('.')[0], 'base64url').toString()).alg, alg);
      await contractHolds(get());
    });
  });
}

group('an issuer with a trailing slash', { trailingSlashIssuer: true }, (get) => {
  test('configured exactly, the contract holds', async () => {
    assert.match(get().idp.issuer, /\/$/);
    await contractHolds(get());
  });
  test('configured without the slash: sign-in answers 503 and the log names both issuers', async () => {
    const stack = get();
    const withoutSlash = stack.idp.issuer.replace(/\/$/, '');
    stack.configure({ OIDC_ISSUER: withoutSlash });
    const lines = await logsOf(async () => {
      const response = await stack.newBrowser().fetch('/auth/login');
      assert.equal(response.status, 503);
      assert.equal(((await response.json()) as { error: string }).error, 'idp_unavailable');
    });
    const first = lines.find((l) => l.level === 'error' || l.level === 'warn');
    assert.equal(first?.event, 'discovery_failed');
    assert.equal(first?.expectedIssuer, withoutSlash);
    assert.equal(first?.receivedIssuer, stack.idp.issuer);
    assert.match(String(first?.problem), /OIDC_ISSUER/);
    stack.configure({});
  });
});

group('an issuer without a trailing slash, configured with one', {}, (get) => {
  test('sign-in answers 503 idp_unavailable; health and log name both issuers', async () => {
    const stack = get();
    stack.configure({ OIDC_ISSUER: `${stack.idp.issuer}/` });
    const lines = await logsOf(async () => {
      const response = await stack.newBrowser().fetch('/auth/login');
      assert.equal(response.status, 503);
    });
    const first = lines.find((l) => l.level === 'error' || l.level === 'warn');
    assert.equal(first?.event, 'discovery_failed');
    assert.equal(first?.expectedIssuer, `${stack.idp.issuer}/`);
    assert.equal(first?.receivedIssuer, stack.idp.issuer);
    assert.equal(providerHealth().status, 'down');
    assert.match(String(providerHealth().problem), new RegExp(`"${stack.idp.issuer}"`));
  });
});

group('a provider that compares Basic credentials as sent', { quirks: { basicCredentialsNotDecoded: true } }, (get) => {
  test('with client_secret_basic_unencoded and a base64 secret, the contract holds', async () => {
    // The stack's own secret is base64url; the matching test with "+/=" is the regression test.
    get().configure({ OIDC_CLIENT_AUTH: 'client_secret_basic_unencoded' });
    await contractHolds(get());
  });
});

group('logout tokens typed JWT instead of logout+jwt', { quirks: { logoutToken: 'typ_jwt' } }, (get) => {
  test('the provider-sent logout token ends the session', async () => {
    await contractHolds(get());
  });
});


group('[A] logout tokens without exp, typed JWT (an earlier Back-Channel Logout draft)', { quirks: { logoutToken: 'typ_jwt_without_exp' } }, (get) => {
  test('the provider-sent logout token ends the session', async () => {
    await contractHolds(get());
  });
});
