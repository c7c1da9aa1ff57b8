/**
 * OpenID Connect Back-Channel Logout 1.0 against a real oidc-provider: a logout at the
 * provider ends the broker's session at once (every copy of its cookie), and logout
 * tokens crafted with the provider's own signing key — which this test generates and
 * hands to the provider — are accepted or refused as §2.6 requires.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { fetchWithJar } from '../../helpers/idp-login.ts';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { sessionOf, sleep, unsealSession } from '../../helpers/core.ts';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

async function signingKey(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('back-channel logout', () => {
  let stack: Stack;
  let providerKey: JWK;
  let metadata: Record<string, string>;

  before(async () => {
    providerKey = await signingKey('RS256');
    stack = await startStack({ idp: { jwks: { keys: [providerKey, await signingKey('ES256')] } } });
    metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  });
  after(() => stack.close());

  /** A logout token as the provider would sign it; `claims` overrides, `unset` removes. */
  async function logoutToken(
    claims: Record<string, unknown>,
    options: { unset?: string[]; header?: Record<string, unknown>; key?: JWK } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      iss: stack.idp.issuer,
      aud: CLIENT_ID,
      iat: now,
      exp: now + 120,
      jti: randomUUID(),
      events: { [EVENT]: {} },
      ...claims,
    };
    for (const name of options.unset ?? []) delete payload[name];
    const key = options.key ?? providerKey;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: key.alg as string, kid: providerKey.kid, typ: 'logout+jwt', ...options.header })
      .sign(await importJWK(key, key.alg));
  }

  function post(body: string, contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
    return fetch(new URL('/auth/backchannel-logout', stack.broker.url), {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
      redirect: 'manual',
    });
  }

  const form = (token: string) => new URLSearchParams({ logout_token: token }).toString();

  async function signedIn(username: string): Promise<BrowserClient> {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn(username)).status, 303);
    assert.equal((await sessionOf(browser)).authenticated, true);
    return browser;
  }

  test('a logout at the provider ends the broker session at once, for every copy of its cookie', async () => {
    const browser = await signedIn('alice');
    const elsewhere = await signedIn('alice'); // another provider session of the same user
    const bob = await signedIn('bob');
    const copied = browser.cookieHeader();
    const before = stack.idp.stats.backchannelLogouts;

    // The user signs out at the provider itself (its own end-session page, no id_token_hint).
    const page = await fetchWithJar(browser.jar, new URL(metadata.end_session_endpoint), { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    const html = await page.text();
    const action = /<form[^>]*id="op\.logoutForm"[^>]*action="([^"]+)"|<form[^>]*action="([^"]+)"[^>]*id="op\.logoutForm"/.exec(html);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(action && xsrf, "the provider's sign-out confirmation form");
    const confirmed = await fetchWithJar(browser.jar, new URL(action[1] ?? action[2], metadata.end_session_endpoint), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    assert.ok(confirmed.status >= 300 && confirmed.status < 400, `confirmation answered ${confirmed.status}`);

    for (let i = 0; i < 50 && stack.idp.stats.backchannelLogouts === before; i++) await sleep(20);
    assert.equal(stack.idp.stats.backchannelLogouts, before + 1, 'the provider delivered the logout token');
    assert.equal(stack.idp.stats.backchannelLogoutErrors, 0);

    assert.deepEqual(await sessionOf(browser), { authenticated: false });
    assert.deepEqual(await sessionOf(browser, copied), { authenticated: false }, 'a copy of the cookie is dead too');
    // The token named the provider session (sid): other sessions are untouched.
    assert.equal((await sessionOf(elsewhere)).authenticated, true, 'another provider session of alice');
    assert.equal((await sessionOf(bob)).authenticated, true);
  });

  test('a valid sub-only logout token ends every session of that user, and only of that user', async () => {
    const first = await signedIn('alice');
    const second = await signedIn('alice');
    const bob = await signedIn('bob');
    const response = await post(form(await logoutToken({ sub: 'user-alice' })));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await sessionOf(first), { authenticated: false });
    assert.deepEqual(await sessionOf(second), { authenticated: false });
    assert.equal((await sessionOf(bob)).authenticated, true);
    // It ends the sessions that existed, not the user's future sign-ins (signedIn checks).
    await sleep(5);
    await signedIn('alice');
  });

  test('a valid sid-only logout token ends that provider session', async () => {
    const bob = await signedIn('bob');
    const otherBob = await signedIn('bob');
    const session = await unsealSession(bob.cookieHeader());
    assert.ok(session?.idpSid, 'the ID token carried sid');
    const response = await post(form(await logoutToken({ sid: session.idpSid })));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await sessionOf(bob), { authenticated: false });
    assert.equal((await sessionOf(otherBob)).authenticated, true);
  });

  test('invalid logout tokens are 400 invalid_request with no-store, and end nothing', async () => {
    // The ID token the provider issues for carol's sign-in (the cookie no longer carries one).
    let idToken = '';
    const onGrant = (ctx: { body?: unknown }) => {
      const issued = (ctx.body as { id_token?: unknown } | undefined)?.id_token;
      if (typeof issued === 'string') idToken = issued;
    };
    stack.idp.provider.on('grant.success', onGrant);
    const carol = await signedIn('carol');
    stack.idp.provider.off('grant.success', onGrant);
    assert.ok(await unsealSession(carol.cookieHeader()));
    assert.ok(idToken, 'the provider issued an ID token');
    const sub = 'user-carol';
    const now = Math.floor(Date.now() / 1000);
    const header = b64({ alg: 'none', typ: 'logout+jwt' });
    const claims = { iss: stack.idp.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: randomUUID(), events: { [EVENT]: {} }, sub };
    const hs256 = await new SignJWT({ ...claims, jti: randomUUID() })
      .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' })
      .sign(new TextEncoder().encode(stack.clientSecret));
    const impostorKey = await signingKey('RS256');

    const cases: Array<[string, string, string?]> = [
      ['no logout_token', 'foo=bar'],
      ['an empty logout_token', 'logout_token='],
      ['a JSON body', JSON.stringify({ logout_token: await logoutToken({ sub }) }), 'application/json'],
      ['a form sent as text/plain', form(await logoutToken({ sub })), 'text/plain'],
      ['alg none', form(`${header}.${b64(claims)}.`)],
      ['HS256 with the client secret', form(hs256)],
      ["another key under the provider's kid", form(await logoutToken({ sub }, { key: impostorKey }))],
      ['a wrong audience', form(await logoutToken({ sub, aud: 'another-client' }))],
      ['a wrong issuer', form(await logoutToken({ sub, iss: 'https://evil.example' }))],
      ['a nonce', form(await logoutToken({ sub, nonce: 'n-0S6_WzA2Mj' }))],
      ['no events', form(await logoutToken({ sub }, { unset: ['events'] }))],
      ['an event of another kind', form(await logoutToken({ sub, events: { 'https://example.com/other': {} } }))],
      ['neither sid nor sub', form(await logoutToken({}))],
      ['expired', form(await logoutToken({ sub, iat: now - 600, exp: now - 300 }))],
      ['no jti', form(await logoutToken({ sub }, { unset: ['jti'] }))],
      ['typ at+jwt', form(await logoutToken({ sub }, { header: { typ: 'at+jwt' } }))],
      ['an ID token posing as a logout token', form(idToken)],
      ['garbage', form('not.a.jwt')],
    ];
    for (const [why, body, contentType] of cases) {
      const response = await post(body, contentType);
      assert.equal(response.status, 400, why);
      assert.equal(response.headers.get('cache-control'), 'no-store', why);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_request', why);
    }
    assert.equal((await sessionOf(carol)).authenticated, true, 'no invalid token ended a session');
  });

  test('a replayed logout token (same jti) is refused', async () => {
    const token = await logoutToken({ sub: 'user-nobody' });
    const first = await post(form(token));
    assert.equal(first.status, 200);
    const replay = await post(form(token));
    assert.equal(replay.status, 400);
    assert.equal(replay.headers.get('cache-control'), 'no-store');
    assert.equal(((await replay.json()) as { error: string }).error, 'invalid_request');
  });

  test('GET is 405', async () => {
    const response = await fetch(new URL('/auth/backchannel-logout', stack.broker.url));
    assert.equal(response.status, 405);
    assert.equal(((await response.json()) as { error: string }).error, 'method_not_allowed');
  });
});
