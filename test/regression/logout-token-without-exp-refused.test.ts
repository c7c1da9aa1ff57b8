/**
 * Issue 13, point 1: a logout token without `exp` (Back-Channel Logout 1.0 before its
 * errata made `exp` REQUIRED; glewlwyd 2.7 sends such tokens) was refused with 400, so a
 * logout at that provider never ended the broker's session. `iat` is bounded by the
 * maximum age already; a present `exp` is still checked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JWK } from 'jose';
import { CLIENT_ID, startStack, type Stack } from '../helpers/stack.ts';
import { sessionOf } from '../helpers/core.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../helpers/logout-tokens.ts';

describe('a logout token without exp', () => {
  let stack: Stack;
  let providerKey: JWK;

  before(async () => {
    providerKey = await providerSigningKey();
    stack = await startStack({ idp: { jwks: { keys: [providerKey] } } });
  });
  after(() => stack.close());

  const seconds = () => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>, unset: string[] = []) =>
    signLogoutToken(providerKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, claims, unset);

  test('ends the session', async () => {
    const alice = stack.newBrowser();
    assert.equal((await alice.signIn('alice')).status, 303);
    assert.equal(await postLogoutToken(stack.broker.url, await sign({ sub: 'user-alice' }, ['exp'])), 200);
    assert.deepEqual(await sessionOf(alice), { authenticated: false });
  });

  test('is still refused when older than the maximum age, and a present exp is still checked', async () => {
    const bob = stack.newBrowser();
    assert.equal((await bob.signIn('bob')).status, 303);
    assert.equal(await postLogoutToken(stack.broker.url, await sign({ sub: 'user-bob', iat: seconds() - 400 }, ['exp'])), 400);
    assert.equal(await postLogoutToken(stack.broker.url, await sign({ sub: 'user-bob', iat: seconds() - 100, exp: seconds() - 60 })), 400);
    assert.equal((await sessionOf(bob)).authenticated, true);
  });
});
