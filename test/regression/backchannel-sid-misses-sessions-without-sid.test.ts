/**
 * AUDIT L2: a logout token carrying both `sid` and `sub` ended only the sessions keyed
 * by that `sid`. A session whose ID token had no `sid` (a claims mapper that drops it, a
 * provider that adds it only on some flows) survived, yet the broker answered 200, so
 * the provider believed the user was signed out everywhere.
 *
 * The real oidc-provider is made to leave `sid` out of its ID tokens, as such providers
 * do; the logout token is signed with the provider's own key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JWK } from 'jose';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../helpers/stack.ts';
import { sessionOf, unsealSession } from '../helpers/core.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../helpers/logout-tokens.ts';

describe('a back-channel logout with sid and sub', () => {
  let stack: Stack;
  let providerKey: JWK;

  before(async () => {
    providerKey = await providerSigningKey();
    stack = await startStack({ idp: { jwks: { keys: [providerKey] } } });
  });
  after(() => stack.close());

  async function backchannelLogout(claims: Record<string, unknown>): Promise<number> {
    return postLogoutToken(stack.broker.url, await signLogoutToken(providerKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, claims));
  }

  async function signedIn(username: string, withSid: boolean): Promise<BrowserClient> {
    const original = stack.idp.provider.Client.prototype.includeSid;
    stack.idp.provider.Client.prototype.includeSid = () => withSid;
    try {
      const browser = stack.newBrowser();
      assert.equal((await browser.signIn(username)).status, 303);
      assert.equal((await sessionOf(browser)).authenticated, true);
      assert.equal((await unsealSession(browser.cookieHeader()))?.idpSid !== undefined, withSid, `the ID token ${withSid ? 'had' : 'had no'} sid`);
      return browser;
    } finally {
      stack.idp.provider.Client.prototype.includeSid = original;
    }
  }

  test('also ends the sessions of that sub whose ID token had no sid', async () => {
    const withoutSid = await signedIn('alice', false);
    assert.equal(await backchannelLogout({ sid: 'a-provider-session-the-broker-never-saw', sub: 'user-alice' }), 200);
    assert.deepEqual(await sessionOf(withoutSid), { authenticated: false });
  });

  test('still spares the same user\'s sessions of other provider sessions, and other users', async () => {
    const ended = await signedIn('alice', true);
    const otherProviderSession = await signedIn('alice', true);
    const bob = await signedIn('bob', false);
    const sid = (await unsealSession(ended.cookieHeader()))?.idpSid;
    assert.equal(await backchannelLogout({ sid, sub: 'user-alice' }), 200);
    assert.deepEqual(await sessionOf(ended), { authenticated: false });
    assert.equal((await sessionOf(otherProviderSession)).authenticated, true, 'a session with another sid is not this logout\'s');
    assert.equal((await sessionOf(bob)).authenticated, true);
  });
});
