/**
 * `POST /auth/logout` against a real oidc-provider: same-origin only, the session ended
 * for every copy of the cookie, the refresh token revoked at the provider (RFC 7009),
 * the cookie cleared with its own attributes, and RP-initiated logout at the provider.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getConfig } from '../../../lib/config/load.ts';
import { metrics } from '../../../lib/ops/metrics.ts';
import { storeKeys } from '../../../lib/stores/keys.ts';
import { fetchWithJar } from '../../helpers/idp-login.ts';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { cookieAttributes, sessionOf, setCookies, unsealSession } from '../../helpers/core.ts';

describe('POST /auth/logout', () => {
  let stack: Stack;
  let metadata: Record<string, string>;

  before(async () => {
    stack = await startStack();
    metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  });
  after(() => stack.close());

  const basic = () => `Basic ${Buffer.from(`${CLIENT_ID}:${stack.clientSecret}`).toString('base64')}`;

  async function atProvider(endpoint: string, form: Record<string, string>): Promise<Record<string, unknown>> {
    const response = await fetch(metadata[endpoint], {
      method: 'POST',
      headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    return (await response.json()) as Record<string, unknown>;
  }

  async function signedIn(username = 'alice'): Promise<BrowserClient> {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn(username)).status, 303);
    assert.equal((await sessionOf(browser)).authenticated, true);
    return browser;
  }

  test('GET is 405 method_not_allowed and signs nobody out', async () => {
    const browser = await signedIn();
    const response = await browser.fetch('/auth/logout', { headers: { origin: browser.origin } });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.match(response.headers.get('allow') ?? '', /POST/);
    assert.equal(((await response.json()) as { error: string }).error, 'method_not_allowed');
    assert.equal((await sessionOf(browser)).authenticated, true);
  });

  test('a cross-site or unproven POST is 403 csrf and the session keeps working', async () => {
    const browser = await signedIn();
    const revocationsBefore = stack.idp.stats.grantsRevoked;
    const cases: Array<Record<string, string>> = [
      {},
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: `${browser.origin}.evil.example` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' },
      { origin: browser.origin, 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of cases) {
      const response = await browser.fetch('/auth/logout', { method: 'POST', headers });
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(response.headers.get('location'), null);
      assert.equal(((await response.json()) as { error: string }).error, 'csrf');
      assert.deepEqual(setCookies(response, /^cloakroom/), [], 'the cookie is not touched');
    }
    assert.equal((await sessionOf(browser)).authenticated, true);
    assert.equal(stack.idp.stats.grantsRevoked, revocationsBefore, 'nothing was revoked');
  });

  test('same-origin POST: 303 to end_session_endpoint, cookie cleared, copies dead, refresh token revoked', async () => {
    const browser = await signedIn();
    const copied = browser.cookieHeader();
    const session = await unsealSession(copied);
    assert.ok(session?.refreshToken);
    assert.equal(session.idToken, undefined, 'the ID token is not carried in the cookie');
    assert.equal((await atProvider('introspection_endpoint', { token: session.refreshToken })).active, true);
    const revocationsBefore = stack.idp.stats.grantsRevoked;

    const response = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('cache-control'), 'no-store');

    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, metadata.end_session_endpoint);
    // OIDC_END_SESSION_HINT=client_id (the default): no ID token in this browser-visible URL.
    assert.equal(location.searchParams.get('id_token_hint'), null);
    assert.equal(location.searchParams.get('client_id'), CLIENT_ID);
    assert.equal(location.searchParams.get('post_logout_redirect_uri'), `${browser.origin}/`);
    assert.match(location.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{16,}$/);

    const [cleared, ...more] = setCookies(response, 'cloakroom');
    assert.deepEqual(more, []);
    const attributes = cookieAttributes(cleared);
    assert.ok(cleared.startsWith('cloakroom=;'));
    assert.equal(attributes.get('max-age'), '0');
    assert.equal(attributes.get('path'), '/');
    assert.ok(attributes.has('httponly'));
    assert.equal(attributes.get('samesite'), 'Strict');
    assert.ok(!attributes.has('domain'));

    assert.equal(browser.cookie('cloakroom'), undefined, 'the browser dropped the cookie');
    assert.deepEqual(await sessionOf(browser), { authenticated: false });
    assert.deepEqual(await sessionOf(browser, copied), { authenticated: false }, 'a copy taken before logout is dead');

    // RFC 7009 at the provider: the refresh token (and its grant) is gone.
    assert.ok(stack.idp.stats.grantsRevoked > revocationsBefore, 'the provider revoked the grant');
    assert.equal((await atProvider('introspection_endpoint', { token: session.refreshToken })).active, false);
    const refresh = await atProvider('token_endpoint', { grant_type: 'refresh_token', refresh_token: session.refreshToken });
    assert.equal(refresh.error, 'invalid_grant');
    assert.equal(refresh.access_token, undefined);

    // The provider accepts the end-session request the broker built (client_id, registered redirect).
    const confirm = await fetchWithJar(browser.jar, location, { headers: { accept: 'text/html' } });
    assert.equal(confirm.status, 200);
    const html = await confirm.text();
    assert.match(html, /op\.logoutForm/);
    assert.doesNotMatch(html, /Something went wrong/);
  });

  test('a second logout with the copied cookie does not revive anything and still answers 303', async () => {
    const browser = await signedIn();
    const copied = browser.cookieHeader();
    const first = await browser.fetch('/auth/logout', { method: 'POST', headers: { 'sec-fetch-site': 'same-origin' } });
    assert.equal(first.status, 303);
    const second = await fetch(new URL('/auth/logout', browser.origin), {
      method: 'POST',
      headers: { origin: browser.origin, cookie: copied },
      redirect: 'manual',
    });
    assert.equal(second.status, 303);
    assert.equal(second.headers.get('location'), `${browser.origin}/`);
    assert.deepEqual(await sessionOf(browser, copied), { authenticated: false });
  });

  test('logout of one browser leaves another session of the same user alone', async () => {
    const leaving = await signedIn('alice');
    const staying = await signedIn('alice');
    const response = await leaving.fetch('/auth/logout', { method: 'POST', headers: { origin: leaving.origin } });
    assert.equal(response.status, 303);
    assert.deepEqual(await sessionOf(leaving), { authenticated: false });
    assert.equal((await sessionOf(staying)).authenticated, true);
  });

  test('a sign-in counts in cloakroom_sessions_started_total, a logout in cloakroom_sessions_ended_total{reason="logout"}', async () => {
    const value = async (name: 'cloakroom_sessions_started_total' | 'cloakroom_sessions_ended_total', labels: Record<string, string> = {}) => {
      const counter = name === 'cloakroom_sessions_started_total' ? metrics.sessionsStarted : metrics.sessionsEnded;
      const { values } = await counter.get();
      return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
    };
    const started = await value('cloakroom_sessions_started_total');
    const ended = await value('cloakroom_sessions_ended_total', { reason: 'logout' });
    const browser = await signedIn();
    assert.equal(await value('cloakroom_sessions_started_total'), started + 1);
    assert.equal((await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } })).status, 303);
    assert.equal(await value('cloakroom_sessions_ended_total', { reason: 'logout' }), ended + 1);
  });

  test('logout without a session: 303 to the app root', async () => {
    const browser = stack.newBrowser();
    const response = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), `${browser.origin}/`);
    assert.equal(response.headers.get('cache-control'), 'no-store');
  });

  test('the whole cookie family is cleared, chunks of a larger, older family included', async () => {
    const browser = await signedIn('carol');
    // Chunks left by a family written under a larger budget (before SESSION_COOKIE_MAX_BYTES).
    const headers = new Headers();
    for (const n of [3, 4]) headers.append('set-cookie', `cloakroom.${n}=stale; Path=/`);
    browser.jar.store(new URL(browser.origin), new Response(null, { headers }));
    const response = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
    assert.equal(response.status, 303);
    const cleared = setCookies(response, /^cloakroom/).filter((h) => /; Max-Age=0(;|$)/.test(h)).map((h) => h.slice(0, h.indexOf('=')));
    for (const name of ['cloakroom', 'cloakroom.0', 'cloakroom.1', 'cloakroom.3', 'cloakroom.4']) assert.ok(cleared.includes(name), `${name} is expired`);
    assert.deepEqual(browser.jar.names().filter((n) => n.startsWith('cloakroom')), []);
  });

  test('OIDC_END_SESSION_HINT=id_token: the ID token, kept sealed in the store (not the cookie), goes as id_token_hint', async () => {
    stack.configure({ OIDC_END_SESSION_HINT: 'id_token' });
    try {
      const browser = await signedIn();
      const session = await unsealSession(browser.cookieHeader());
      assert.ok(session);
      assert.equal(session.idToken, undefined, 'not in the cookie');
      const hintKeys = storeKeys(getConfig(), 'id-token', session.id);
      const kept = await stack.store.get(hintKeys[0] as string);
      assert.match(kept ?? '', /^Fe26\.2\*/, 'kept sealed in the store');
      const response = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
      assert.equal(response.status, 303);
      const location = new URL(response.headers.get('location') ?? '');
      const hint = location.searchParams.get('id_token_hint') ?? '';
      const claims = JSON.parse(Buffer.from(hint.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
      assert.equal(claims.sub, 'user-alice');
      assert.equal(claims.aud, CLIENT_ID);
      assert.equal(claims.sid, session.idpSid);
      // The provider validates the hint and shows its confirmation.
      const confirm = await fetchWithJar(browser.jar, location, { headers: { accept: 'text/html' } });
      assert.equal(confirm.status, 200);
      assert.match(await confirm.text(), /op\.logoutForm/);
      // Taken out of the store at logout.
      assert.deepEqual(await stack.store.getMany(hintKeys), hintKeys.map(() => undefined));
    } finally {
      stack.configure({});
    }
  });
});
