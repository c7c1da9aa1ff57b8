/**
 * Issue 13, point 6: a provider following OpenID Connect Core §5.4 returns `name` and
 * `email` from UserInfo only, not in the ID token; the broker never called UserInfo, so
 * `/auth/session` showed only `sub`. At sign-in it now asks UserInfo when a requested
 * claim is missing (its `sub` must equal the ID token's) and keeps the allow-listed ones.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sessionOf } from '../helpers/core.ts';
import { issuedIdToken, signedIn } from '../helpers/quirk-contract.ts';
import { startQuirkStack, type QuirkStack } from '../helpers/quirk-provider.ts';

let stack: QuirkStack;
before(async () => {
  stack = await startQuirkStack({ idp: { claimsOnlyAtUserInfo: true }, env: { OIDC_END_SESSION_HINT: 'id_token' } });
});
after(() => stack?.close());

test('name and email from UserInfo reach /auth/session when the ID token lacks them', async () => {
  const browser = await signedIn(stack);
  const idToken = await issuedIdToken(stack, browser);
  const claims = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims.name, undefined, 'the quirk is real: no name in the ID token');
  assert.equal(claims.email, undefined, 'the quirk is real: no email in the ID token');

  const session = await sessionOf(browser);
  assert.deepEqual(session.user, { sub: 'user-alice', name: 'Alice Example', email: 'alice@example.com' });
});
