/**
 * AUDIT L3: the back-channel logout's clock windows were fixed (30 s tolerance, 300 s
 * maximum age), so a provider whose clock runs ahead, or a delivery queued for minutes,
 * was refused with 400 and the sessions silently survived; and the cut-off was the
 * broker's processing time, so a queued logout also ended a session the user had
 * started after logging out. Now OIDC_CLOCK_TOLERANCE and OIDC_LOGOUT_TOKEN_MAX_AGE
 * apply, the cut-off follows the token's `iat`, and refusals are structured log events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JWK } from 'jose';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../helpers/stack.ts';
import { sessionOf } from '../helpers/core.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../helpers/logout-tokens.ts';

describe('back-channel logout clock windows', () => {
  let stack: Stack;
  let providerKey: JWK;

  before(async () => {
    providerKey = await providerSigningKey();
    stack = await startStack({ idp: { jwks: { keys: [providerKey] } } });
  });
  after(async () => {
    stack.configure({ OIDC_CLOCK_TOLERANCE: undefined, OIDC_LOGOUT_TOKEN_MAX_AGE: undefined });
    await stack.close();
  });

  const seconds = () => Math.floor(Date.now() / 1000);
  const logout = async (claims: Record<string, unknown>) =>
    postLogoutToken(stack.broker.url, await signLogoutToken(providerKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, claims));

  async function signedIn(username: string): Promise<BrowserClient> {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn(username)).status, 303);
    assert.equal((await sessionOf(browser)).authenticated, true);
    return browser;
  }

  test('OIDC_CLOCK_TOLERANCE=120: a provider clock 100 s ahead still ends the session', async () => {
    stack.configure({ OIDC_CLOCK_TOLERANCE: '120', OIDC_LOGOUT_TOKEN_MAX_AGE: undefined });
    const alice = await signedIn('alice');
    assert.equal(await logout({ sub: 'user-alice', iat: seconds() + 100, exp: seconds() + 220 }), 200);
    assert.deepEqual(await sessionOf(alice), { authenticated: false });
  });

  test('OIDC_LOGOUT_TOKEN_MAX_AGE=900: a delivery queued for 10 minutes is accepted', async () => {
    stack.configure({ OIDC_CLOCK_TOLERANCE: undefined, OIDC_LOGOUT_TOKEN_MAX_AGE: '900' });
    assert.equal(await logout({ sub: 'user-nobody', iat: seconds() - 600, exp: seconds() + 60 }), 200);
  });

  test('a queued logout does not end the session the user signed in to after logging out', async () => {
    stack.configure({ OIDC_CLOCK_TOLERANCE: undefined, OIDC_LOGOUT_TOKEN_MAX_AGE: undefined });
    // The user logged out at the provider 200 s ago and has signed in again since; the
    // provider's delivery of that logout arrives only now.
    const signedInAgain = await signedIn('carol');
    assert.equal(await logout({ sub: 'user-carol', iat: seconds() - 200, exp: seconds() + 60 }), 200);
    assert.equal((await sessionOf(signedInAgain)).authenticated, true, 'the newer session survives');
    // A prompt logout still ends it.
    assert.equal(await logout({ sub: 'user-carol' }), 200);
    assert.deepEqual(await sessionOf(signedInAgain), { authenticated: false });
  });

  test('a refusal is a structured log event with the reason, never the token', async () => {
    stack.configure({ OIDC_CLOCK_TOLERANCE: undefined, OIDC_LOGOUT_TOKEN_MAX_AGE: undefined, LOG_LEVEL: 'warn' });
    const token = await signLogoutToken(providerKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sub: 'user-alice', iat: seconds() + 100, exp: seconds() + 220 });
    const lines: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    let status: number;
    try {
      status = await postLogoutToken(stack.broker.url, token);
    } finally {
      process.stderr.write = write;
      stack.configure({ LOG_LEVEL: undefined });
    }
    assert.equal(status, 400);
    const refusals = lines.flatMap((l) => l.split('\n')).filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.event === 'backchannel_logout_refused');
    assert.equal(refusals.length, 1, lines.join(''));
    assert.deepEqual({ reason: refusals[0].reason, claim: refusals[0].claim }, { reason: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iat' });
    for (const part of token.split('.')) assert.ok(!lines.join('').includes(part), 'no part of the token is logged');
  });
});
