/**
 * SESSION_STORAGE=server against a real oidc-provider (rotating refresh tokens): the
 * cookie carries only a sealed handle, under 400 bytes also for 150 group claims; the
 * session and its tokens live in the store, sealed under a keyed hash of the handle; the
 * same endpoints behave the same; logout deletes the record, so a copied cookie dies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEMO_USERS, type DevUser } from '../../../demo/idp.ts';
import { getConfig } from '../../../lib/config/load.ts';
import { storeKeys } from '../../../lib/stores/keys.ts';
import { unseal } from '../../../lib/session/codec.ts';
import type { Session } from '../../../lib/session/session.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { sessionOf, sleep } from '../../helpers/core.ts';

/** A session no cookie budget can hold (a 9,000-character name): fits on the server. */
const HUGE: DevUser = {
  sub: 'user-huge',
  username: 'huge',
  password: 'huge-password',
  claims: { name: `Huge ${'Name-'.repeat(1800)}`, email: 'huge@example.com' },
};

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: { accessTokenTtl: 4, users: [...DEMO_USERS, HUGE] },
    env: { SESSION_STORAGE: 'server', BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: `${up.url}/v1`, auth: 'required' }]) },
  });
});
after(async () => {
  await stack?.close();
  await up?.close();
});

function familyBytes(browser: BrowserClient): number {
  return browser
    .cookieHeader()
    .split('; ')
    .filter((c) => /^cloakroom(\.\d+)?=/.test(c))
    .reduce((sum, c) => sum + Buffer.byteLength(c) + 2, 0);
}

/** The record the store holds for the browser's session, unsealed (the test knows the secret). */
async function record(sessionId: string): Promise<{ raw: string | undefined; session: Session | undefined }> {
  const config = getConfig();
  const [raw] = await stack.store.getMany(storeKeys(config, 'session', sessionId));
  if (!raw) return { raw, session: undefined };
  const opened = await unseal<Session>(raw, config.session, config.session.absoluteTimeout);
  return { raw, session: 'data' in opened ? opened.data : undefined };
}

/** The handle in the browser's cookie (the session id), unsealed. */
async function handleOf(browser: BrowserClient): Promise<string> {
  const config = getConfig();
  const opened = await unseal<{ h: string }>(browser.cookie('cloakroom') ?? '', config.session, config.session.absoluteTimeout);
  assert.ok('data' in opened, 'the cookie is a sealed handle');
  return opened.data.h;
}

describe('SESSION_STORAGE=server', () => {
  test('150 groups: the cookie is one sealed handle under 400 bytes; the session and its tokens are in the store, sealed', async () => {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn('carol')).status, 303);
    const bytes = familyBytes(browser);
    assert.ok(bytes < 400, `${bytes} bytes of cookies`);
    const body = await sessionOf(browser);
    assert.equal(body.authenticated, true);
    assert.deepEqual(body.user, { sub: 'user-carol', name: 'Carol Example', email: 'carol@example.com' });

    const handle = await handleOf(browser);
    const { raw, session } = await record(handle);
    assert.ok(raw?.startsWith('Fe26.2*'), 'the record is an iron seal');
    assert.ok(session?.refreshToken, 'the record holds the refresh token');
    assert.equal(session.id, handle);
    assert.ok(!(raw ?? '').includes(session.refreshToken), 'never in the clear');
    assert.ok(!(browser.cookie('cloakroom') ?? '').includes(session.refreshToken));
  });

  test('a session too large for any cookie signs in and works', async () => {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn('huge')).status, 303);
    assert.ok(familyBytes(browser) < 400);
    assert.equal((await sessionOf(browser)).authenticated, true);
  });

  test('the proxy refreshes and the record follows; the cookie need not change to carry new tokens', async () => {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn('alice')).status, 303);
    const handle = await handleOf(browser);
    const first = (await record(handle)).session?.refreshToken;
    assert.equal((await browser.api('/api/up/a')).status, 200);
    await sleep(2_300);
    const copied = browser.cookieHeader();
    assert.equal((await browser.api('/api/up/b')).status, 200);
    const second = (await record(handle)).session?.refreshToken;
    assert.ok(second && second !== first, 'the rotated refresh token is in the record');
    // The cookie copied before the refresh reaches the same, refreshed record: nothing replayed.
    const viaCopy = await fetch(`${stack.broker.url}/api/up/c`, { headers: { cookie: copied, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
    assert.equal(viaCopy.status, 200);
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });

  test('logout deletes the record: a copied cookie is dead, and cleared', async () => {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn('alice')).status, 303);
    const handle = await handleOf(browser);
    const copied = browser.cookieHeader();
    const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
    assert.equal(logout.status, 303);
    assert.equal((await record(handle)).raw, undefined, 'the record is gone');
    const response = await fetch(`${stack.broker.url}/auth/session`, { headers: { cookie: copied, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
    assert.deepEqual(await response.json(), { authenticated: false });
    assert.ok(response.headers.getSetCookie().some((h) => h.startsWith('cloakroom=;')), 'the dead cookie is cleared');
    const api = await fetch(`${stack.broker.url}/api/up/x`, { headers: { cookie: copied, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
    assert.equal(api.status, 401);
  });

  test('a tampered handle, or a cookie-mode seal, reads as no session (200, never 500)', async () => {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn('alice')).status, 303);
    const value = browser.cookie('cloakroom') ?? '';
    const tampered = `${value.slice(0, 40)}${value[40] === 'A' ? 'B' : 'A'}${value.slice(41)}`;
    for (const cookie of [`cloakroom=${tampered}`, 'cloakroom=not-a-seal']) {
      const response = await fetch(`${stack.broker.url}/auth/session`, { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { authenticated: false });
    }
    assert.equal((await sessionOf(browser)).authenticated, true, 'the genuine cookie still works');
  });
});
