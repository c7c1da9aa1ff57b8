/**
 * `GET /auth/session` and the session cookie, after real sign-ins at oidc-provider:
 * the anti-forgery header, the allow-listed answer that never holds a token, the
 * cookie's attributes and encryption, chunking for a large ID token, tampered and
 * foreign cookies, secret rotation, and the idle and absolute lifetimes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { getConfig, type Config } from '../../../lib/config/load.ts';
import { seal } from '../../../lib/session/codec.ts';
import { DEMO_USERS, type DevUser } from '../../../demo/idp.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import {
  callbackUrl,
  cookieAttributes,
  sessionCookiesSet,
  sessionOf,
  setCookies,
  sleep,
  tokenValues,
  unsealSession,
  withBrokerCookiesOf,
} from '../../helpers/core.ts';

const newSecret = () => randomBytes(32).toString('base64url');

/** The answer to a session request with exactly this Cookie header (no jar). */
function sessionWithCookie(stack: Stack, cookie: string): Promise<Response> {
  return fetch(new URL('/auth/session', stack.broker.url), {
    headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' },
    redirect: 'manual',
  });
}

/** Every session cookie the answer expires. */
function clearedNames(response: Response): string[] {
  return setCookies(response, /^cloakroom(\.\d+)?$/)
    .filter((h) => /; Max-Age=0(;|$)/.test(h))
    .map((h) => h.slice(0, h.indexOf('=')));
}

/** Every name of the session cookie family within the default 7168-byte budget. */
const FAMILY = ['cloakroom', 'cloakroom.0', 'cloakroom.1'];

/**
 * A user whose session needs two chunks: a display name of 3,000 characters (the
 * session carries `name` for /auth/session). With the ID token no longer in the cookie,
 * 150 group claims alone do not make a session chunked any more.
 */
const DANA: DevUser = {
  sub: 'user-dana',
  username: 'dana',
  password: 'dana-password',
  claims: { name: `Dana ${'Example-'.repeat(375)}`, email: 'dana@example.com', email_verified: true },
};

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Another base64url character whose top bit differs: the last character of a base64
 * segment carries unused low bits, so changing only those would change nothing decoded.
 */
function flipChar(c: string): string {
  return BASE64URL[BASE64URL.indexOf(c) ^ 32];
}

/** One character in the middle of a seal changed. */
function flipMiddle(value: string): string {
  let i = Math.floor(value.length / 2);
  while (!BASE64URL.includes(value[i])) i++;
  return `${value.slice(0, i)}${flipChar(value[i])}${value.slice(i + 1)}`;
}

async function signedIn(stack: Stack, username = 'alice'): Promise<{ browser: BrowserClient; callback: Response }> {
  const browser = stack.newBrowser();
  const callback = await browser.signIn(username);
  assert.equal(callback.status, 303);
  return { browser, callback };
}

describe('GET /auth/session', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ idp: { users: [...DEMO_USERS, DANA] } });
  });
  after(() => stack.close());

  test('needs X-CSRF: 1, and refuses cross-site requests that carry it', async () => {
    const { browser } = await signedIn(stack);
    const cases: Array<Record<string, string>> = [
      {},
      { 'x-csrf': '0' },
      { 'x-csrf': 'true' },
      { 'x-csrf': '1', 'sec-fetch-site': 'cross-site' },
      { 'x-csrf': '1', 'sec-fetch-site': 'same-site' },
      { 'x-csrf': '1', origin: 'https://evil.example' },
    ];
    for (const headers of cases) {
      const response = await browser.fetch('/auth/session', { headers });
      assert.equal(response.status, 403, JSON.stringify(headers));
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(((await response.json()) as { error: string }).error, 'csrf');
      assert.deepEqual(setCookies(response, /^cloakroom/), [], 'a refused request does not touch the cookie');
    }
    assert.equal((await sessionOf(browser)).authenticated, true);
  });

  test('signed out: exactly {"authenticated": false}, no-store', async () => {
    const response = await stack.newBrowser().api('/auth/session');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), { authenticated: false });
    assert.deepEqual(response.headers.getSetCookie(), []);
  });

  test('signed in: authenticated, user (sub, name, email only) and expiresAt — never a token', async () => {
    const { browser } = await signedIn(stack);
    const response = await browser.api('/auth/session');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const text = await response.text();
    const body = JSON.parse(text) as { authenticated: boolean; user: Record<string, unknown>; expiresAt: number };
    assert.deepEqual(Object.keys(body).sort(), ['authenticated', 'expiresAt', 'user']);
    assert.equal(body.authenticated, true);
    assert.deepEqual(body.user, { sub: 'user-alice', name: 'Alice Example', email: 'alice@example.com' });
    const now = Date.now() / 1000;
    assert.ok(Number.isInteger(body.expiresAt));
    assert.ok(body.expiresAt > now && body.expiresAt <= now + 86_400 + 1, `expiresAt ${body.expiresAt}`);

    const session = await unsealSession(browser.cookieHeader());
    assert.ok(session);
    const tokens = tokenValues(session);
    assert.ok(tokens.length >= 2, 'the session holds the access and refresh tokens');
    assert.equal(session.idToken, undefined, 'and not the ID token (AUDIT.md M2, L10)');
    for (const token of tokens) assert.ok(!text.includes(token), 'no token in the answer');
    assert.ok(!text.includes('eyJ'), 'nothing JWT-like in the answer');
  });

  test('the session cookie: HttpOnly, Path=/, no Domain, SameSite=Strict, an iron seal holding no readable token', async () => {
    const { browser, callback } = await signedIn(stack);
    const [header, ...others] = sessionCookiesSet(callback);
    assert.deepEqual(others, []);
    assert.ok(header.startsWith('cloakroom='));
    const attributes = cookieAttributes(header);
    assert.equal(attributes.get('path'), '/');
    assert.ok(attributes.has('httponly'));
    assert.equal(attributes.get('samesite'), 'Strict');
    assert.ok(!attributes.has('domain'));
    // http://localhost: no Secure (the browser would drop it), hence no __Host- prefix.
    assert.ok(!attributes.has('secure'));
    const maxAge = Number(attributes.get('max-age'));
    assert.ok(maxAge > 604_700 && maxAge <= 604_800, `Max-Age ${maxAge}`);

    const value = browser.cookie('cloakroom') ?? '';
    assert.ok(value.startsWith('Fe26.2*'), 'an iron seal');
    const session = await unsealSession(browser.cookieHeader());
    assert.ok(session);
    for (const token of tokenValues(session)) {
      assert.ok(!value.includes(token), 'no token in the cookie');
      // Not even a recognisable part of one (the JWT header or an opaque token's prefix).
      assert.ok(!value.includes(token.slice(0, 24)));
    }
    assert.ok(!value.includes('eyJ'));
  });

  test('SESSION_SAMESITE=lax gives SameSite=Lax', async () => {
    stack.configure({ SESSION_SAMESITE: 'lax' });
    try {
      const { browser, callback } = await signedIn(stack);
      const [header] = sessionCookiesSet(callback);
      assert.equal(cookieAttributes(header).get('samesite'), 'Lax');
      assert.equal((await sessionOf(browser)).authenticated, true);
      const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
      assert.equal(logout.status, 303);
      const [cleared] = setCookies(logout, 'cloakroom');
      assert.equal(cookieAttributes(cleared).get('samesite'), 'Lax', 'cleared with its own attributes');
    } finally {
      stack.configure({});
    }
  });

  test('150 groups in the ID token: the cookie family stays within SESSION_COOKIE_MAX_BYTES, one cookie, and the session works', async () => {
    const { browser, callback } = await signedIn(stack, 'carol');
    const headers = sessionCookiesSet(callback);
    assert.deepEqual(headers.map((h) => h.slice(0, h.indexOf('='))), ['cloakroom'], 'the groups stay out of the cookie with the ID token');
    const family = browser.cookieHeader().split('; ').filter((c) => /^cloakroom(\.\d+)?=/.test(c));
    const bytes = family.reduce((sum, c) => sum + Buffer.byteLength(c) + 2, 0);
    assert.ok(bytes <= 7168, `the family takes ${bytes} bytes of the Cookie header`);
    const body = await sessionOf(browser);
    assert.equal(body.authenticated, true);
    assert.deepEqual(body.user, { sub: 'user-carol', name: 'Carol Example', email: 'carol@example.com' });
  });

  test('a session larger than one cookie: chunks of at most 4096 bytes each, within the budget, and the session works', async () => {
    const { browser, callback } = await signedIn(stack, 'dana');
    const headers = sessionCookiesSet(callback);
    const names = headers.map((h) => h.slice(0, h.indexOf('=')));
    assert.deepEqual(names, ['cloakroom.0', 'cloakroom.1']);
    for (const header of headers) {
      assert.ok(Buffer.byteLength(header) <= 4096, `Set-Cookie of ${Buffer.byteLength(header)} bytes`);
      const attributes = cookieAttributes(header);
      assert.ok(attributes.has('httponly'));
      assert.equal(attributes.get('path'), '/');
    }
    assert.equal((await sessionOf(browser)).authenticated, true);
  });

  test('signing in again as someone else replaces the whole cookie family (chunked ⇄ single)', async () => {
    const { browser: first } = await signedIn(stack, 'dana');
    const chunks = first.jar.names().filter((n) => n.startsWith('cloakroom.'));
    assert.ok(chunks.length >= 2);
    // Same broker cookies, no provider session: the next sign-in can be as alice.
    const browser = withBrokerCookiesOf(stack, first);
    const alice = await browser.signIn('alice');
    assert.equal(alice.status, 303);
    for (const chunk of chunks) assert.ok(clearedNames(alice).includes(chunk), `${chunk} is expired`);
    assert.ok(!clearedNames(alice).includes('cloakroom'), 'the cookie written is not also expired');
    assert.deepEqual(browser.jar.names().filter((n) => n.startsWith('cloakroom')), ['cloakroom']);
    assert.equal(((await sessionOf(browser)).user as { sub: string }).sub, 'user-alice');

    const again = withBrokerCookiesOf(stack, browser);
    const carol = await again.signIn('dana');
    assert.equal(carol.status, 303);
    const written = sessionCookiesSet(carol).map((h) => h.slice(0, h.indexOf('=')));
    assert.ok(written.length >= 2);
    assert.ok(clearedNames(carol).includes('cloakroom'), 'the stale single cookie is expired');
    assert.deepEqual(clearedNames(carol).filter((n) => written.includes(n)), []);
    assert.equal(((await sessionOf(again)).user as { sub: string }).sub, 'user-dana');
  });

  test('a callback that cannot see the SameSite=Strict session cookie still replaces it (provider on another site)', async () => {
    // A browser sends no Strict cookie on the provider's cross-site redirect to the
    // callback, so the broker cannot know which session cookies the browser holds.
    for (const [before, after] of [['alice', 'dana'], ['dana', 'alice']]) {
      const { browser: first } = await signedIn(stack, before);
      const browser = withBrokerCookiesOf(stack, first);
      const url = await callbackUrl(browser, after);
      const laxOnly = browser
        .cookieHeader()
        .split('; ')
        .filter((c) => c.startsWith('cloakroom-tx.'))
        .join('; ');
      const callback = await fetch(url, { headers: { cookie: laxOnly }, redirect: 'manual' });
      assert.equal(callback.status, 303);
      browser.jar.store(url, callback);
      const body = await sessionOf(browser);
      assert.equal(body.authenticated, true, `${before} then ${after}`);
      assert.equal((body.user as { sub: string }).sub, `user-${after}`, `${before} then ${after}`);
    }
  });

  test('a tampered or malformed cookie reads as signed out (200, never 500) and is cleared', async () => {
    const { browser } = await signedIn(stack);
    const carol = (await signedIn(stack, 'dana')).browser;
    const value = browser.cookie('cloakroom') ?? '';
    const chunk0 = carol.cookie('cloakroom.0') ?? '';
    const chunk1 = carol.cookie('cloakroom.1') ?? '';
    const cookies = [
      `cloakroom=${flipMiddle(value)}`,
      // The `~2` suffix is outside iron's MAC and inert; the MAC's last character is not.
      `cloakroom=${value.slice(0, value.indexOf('~') - 1)}${value.slice(value.indexOf('~'))}`,
      `cloakroom=${value.slice(0, value.indexOf('~'))}`.replace(/.$/, flipChar),
      `cloakroom=${value.replace(/\*(\d+)\*/, '*1*')}`,
      `cloakroom=${value.split('*').slice(0, 4).join('*')}`,
      'cloakroom=Fe26.2**',
      'cloakroom=not-a-seal',
      `cloakroom=${'A'.repeat(3000)}`,
      `cloakroom.0=${flipMiddle(chunk0)}; cloakroom.1=${chunk1}`,
      `cloakroom.0=${chunk0}`,
      `cloakroom.0=${chunk1}; cloakroom.1=${chunk0}`,
    ];
    for (const [i, cookie] of cookies.entries()) {
      const response = await sessionWithCookie(stack, cookie);
      assert.equal(response.status, 200, `case ${i}`);
      assert.deepEqual(await response.json(), { authenticated: false }, `case ${i}`);
      const sent = cookie.split('; ').map((c) => c.slice(0, c.indexOf('=')));
      assert.deepEqual(clearedNames(response).sort(), [...new Set([...FAMILY, ...sent])].sort(), 'the unreadable cookie is cleared, its whole family');
    }
    // The genuine cookies still work.
    assert.equal((await sessionOf(browser)).authenticated, true);
    assert.equal((await sessionOf(carol)).authenticated, true);
  });

  test('a cookie sealed with another secret reads as signed out and is cleared', async () => {
    const { browser } = await signedIn(stack);
    const session = await unsealSession(browser.cookieHeader());
    assert.ok(session);
    const ours = Object.keys(getConfig().session.sealPassword)[0];
    const foreign = newSecret();
    for (const password of [{ [ours]: foreign }, { 1: foreign }, foreign]) {
      const sealed = await seal(session, { sealPassword: password as Record<number, string>, unsealPasswords: {} }, 3600);
      const response = await sessionWithCookie(stack, `cloakroom=${sealed}`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { authenticated: false });
      assert.deepEqual(clearedNames(response), FAMILY);
    }
  });

  test('SESSION_SECRETS rotation: A → "B,A" keeps the session and re-seals it with B → "B" alone still works', async () => {
    const secretA = stack.sessionSecret;
    const secretB = newSecret();
    const keysA: Config['session'] = getConfig().session;
    try {
      const { browser } = await signedIn(stack);
      const sealedWithA = browser.cookie('cloakroom') ?? '';
      const session = await unsealSession(browser.cookieHeader());
      assert.ok(session);

      stack.configure({ SESSION_SECRETS: `${secretB},${secretA}` });
      const rotated = await browser.api('/auth/session');
      assert.equal(rotated.status, 200);
      assert.equal(((await rotated.json()) as { authenticated: boolean }).authenticated, true);
      const [resealed] = sessionCookiesSet(rotated);
      assert.ok(resealed, 'the answer re-seals the cookie with the new first secret');
      const sealedWithB = browser.cookie('cloakroom') ?? '';
      assert.notEqual(sealedWithB, sealedWithA);
      assert.notEqual(sealedWithB.split('*')[1], sealedWithA.split('*')[1], 'another password id');
      // Once re-sealed, it is not re-sealed on every request.
      assert.deepEqual(sessionCookiesSet(await browser.api('/auth/session')), []);

      stack.configure({ SESSION_SECRETS: secretB });
      const body = await sessionOf(browser);
      assert.equal(body.authenticated, true);
      assert.equal((body.user as { sub: string }).sub, 'user-alice');
      // A cookie sealed with the retired secret A no longer opens (a fresh seal: not cached).
      const stale = await seal(session, keysA, 3600);
      assert.deepEqual(await (await sessionWithCookie(stack, `cloakroom=${stale}`)).json(), { authenticated: false });
    } finally {
      stack.configure({});
    }
  });
});

describe('session lifetimes (idle 2 s, absolute 4 s)', { concurrency: true }, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { SESSION_IDLE_TIMEOUT: '2', SESSION_ABSOLUTE_TIMEOUT: '4' } });
  });
  after(() => stack.close());

  test('idle: unused for 3 s, the session is over (the cookie is still within its absolute lifetime)', async () => {
    const { browser } = await signedIn(stack);
    const copied = browser.cookieHeader();
    const first = (await sessionOf(browser)) as { authenticated: boolean; expiresAt: number };
    assert.equal(first.authenticated, true);
    assert.ok(first.expiresAt <= Math.ceil(Date.now() / 1000) + 2, 'expiresAt reflects the idle timeout');
    await sleep(3000);
    const response = await browser.api('/auth/session');
    assert.deepEqual(await response.json(), { authenticated: false });
    assert.deepEqual(clearedNames(response), FAMILY);
    assert.deepEqual(await (await sessionWithCookie(stack, copied)).json(), { authenticated: false });
  });

  test('absolute: used every 400 ms the session outlives the idle timeout, and ends at 4 s all the same', async () => {
    const { browser } = await signedIn(stack);
    const session = await unsealSession(browser.cookieHeader());
    assert.ok(session);
    const { createdAt } = session;
    let latest = browser.cookieHeader();
    let lastTrueAt = 0;
    while (Date.now() < createdAt + 3600) {
      const requestedAt = Date.now();
      const body = await sessionOf(browser);
      // Answered before the absolute deadline, the server judged before it too.
      if (Date.now() >= createdAt + 4000) break;
      assert.equal(body.authenticated, true, `${requestedAt - createdAt} ms after sign-in`);
      assert.ok((body.expiresAt as number) <= Math.ceil(createdAt / 1000) + 4);
      lastTrueAt = requestedAt;
      latest = browser.cookieHeader() || latest;
      await sleep(400);
    }
    assert.ok(lastTrueAt - createdAt > 2500, 'activity kept the session beyond the idle timeout');
    await sleep(Math.max(0, createdAt + 4100 - Date.now()));
    assert.equal((await sessionOf(browser)).authenticated, false);
    // The server enforces it, not only the cookie's Max-Age: the last cookie, replayed.
    const replayed = await sessionWithCookie(stack, latest);
    assert.deepEqual(await replayed.json(), { authenticated: false });
    assert.deepEqual(clearedNames(replayed), FAMILY);
  });
});
