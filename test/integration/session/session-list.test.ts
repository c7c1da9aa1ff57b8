/**
 * The session index and its endpoints, through the broker's route code over HTTP against
 * a real oidc-provider (rotating refresh tokens), in both SESSION_STORAGE modes:
 * GET /auth/sessions, POST /auth/sessions/revoke, POST /ops/revoke, GET /ops/sessions.
 * The production server and several instances on Redis: test/e2e/session-list.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { CLIENT_ID } from '../../helpers/stack.ts';
import { setStoreForTests } from '../../../lib/stores/index.ts';
import { metrics } from '../../../lib/ops/metrics.ts';
import { StoreUnavailableError, type KeyValueStore } from '../../../lib/stores/store.ts';
import { isActiveAtProvider, lastSignIn, watchGrants, type Grant, type ListedSession } from '../../helpers/sessions.ts';

const OPS_TOKEN = randomBytes(32).toString('base64url');
const payloads = JSON.parse(readFileSync(new URL('../../fixtures/session-revoke-payloads.json', import.meta.url), 'utf8')) as { user: string[]; ops: string[] };

let stack: Stack;
let grants: Grant[];

before(async () => {
  stack = await startStack();
  grants = watchGrants(stack.idp.provider);
});
after(async () => {
  await stack?.close();
});

async function revokedCount(): Promise<number> {
  return (await metrics.sessionsEnded.get()).values.find((v) => v.labels.reason === 'revoked')?.value ?? 0;
}

interface Signed {
  browser: BrowserClient;
  refreshToken: string;
  sid: string;
}

async function signIn(username: string): Promise<Signed> {
  const browser = stack.newBrowser();
  const callback = await browser.signIn(username);
  assert.equal(callback.status, 303, `sign-in of ${username}`);
  const grant = lastSignIn(grants);
  assert.ok(grant.refreshToken && grant.sid, 'the provider issued a refresh token and a sid');
  return { browser, refreshToken: grant.refreshToken, sid: grant.sid };
}

async function list(browser: BrowserClient): Promise<ListedSession[]> {
  const response = await browser.api('/auth/sessions');
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('cache-control'), 'no-store');
  return ((await response.json()) as { sessions: ListedSession[] }).sessions;
}

async function authenticated(browser: BrowserClient): Promise<boolean> {
  return ((await (await browser.api('/auth/session')).json()) as { authenticated: boolean }).authenticated;
}

function revoke(browser: BrowserClient, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return browser.api('/auth/sessions/revoke', { method: 'POST', body, headers: { 'content-type': 'application/json', origin: stack.broker.url, ...headers } });
}

function ops(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('authorization', `Bearer ${init.token}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  return fetch(`${stack.broker.url}${path}`, { ...init, headers });
}

for (const mode of ['cookie', 'server'] as const) {
  describe(`SESSION_STORAGE=${mode}`, () => {
    before(() => stack.configure({ SESSION_STORAGE: mode, OPS_TOKEN }));

    test('GET /auth/sessions: alice sees her two sessions, newest first, the current one marked; bob sees only his; nothing secret', async () => {
      const alice1 = await signIn('alice');
      const alice2 = await signIn('alice');
      const bob = await signIn('bob');
      const seen = await list(alice2.browser);
      assert.equal(seen.length, 2);
      assert.deepEqual(seen.map((s) => s.current), [true, false], 'newest first, this one current');
      for (const s of seen) {
        assert.deepEqual(Object.keys(s).sort(), ['createdAt', 'current', 'id', 'lastSeenAt', 'network', 'userAgent']);
        assert.equal(s.network, '127.0.0.0/24');
        assert.ok(Number.isInteger(s.createdAt) && Math.abs(s.createdAt - Date.now() / 1000) < 60, 'createdAt in unix seconds');
        assert.ok(s.lastSeenAt >= s.createdAt);
      }
      assert.ok(seen[0].createdAt >= seen[1].createdAt);
      const fromOther = await list(alice1.browser);
      assert.deepEqual(fromOther.map((s) => [s.id, s.current]), [[seen[0].id, false], [seen[1].id, true]], 'the same handles, current follows the caller');
      const bobs = await list(bob.browser);
      assert.equal(bobs.length, 1);
      assert.ok(!seen.some((s) => s.id === bobs[0].id));

      const body = JSON.stringify(seen) + JSON.stringify(bobs);
      for (const secret of [alice1.refreshToken, alice2.refreshToken, bob.refreshToken]) assert.ok(!body.includes(secret), 'a refresh token in the list');
      for (const browser of [alice1.browser, alice2.browser, bob.browser]) {
        for (const part of browser.cookieHeader().split('; ')) assert.ok(!body.includes(part.slice(part.indexOf('=') + 1)), 'a cookie value in the list');
      }
      assert.ok(!/user-alice|user-bob/.test(body), 'no subject in the list');
    });

    test('POST /auth/sessions/revoke {"others": true}: the other session ends, its refresh token is revoked at the provider; bob\'s handle ends nothing', async () => {
      const alice1 = await signIn('alice');
      const alice2 = await signIn('alice');
      const bob = await signIn('bob');
      const [bobHandle] = (await list(bob.browser)).map((s) => s.id);

      const foreign = await revoke(alice2.browser, JSON.stringify({ id: bobHandle }));
      assert.equal(foreign.status, 200);
      assert.deepEqual(await foreign.json(), { revoked: 0 });
      assert.equal(await authenticated(bob.browser), true, 'bob\'s session survives alice naming its handle');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, bob.refreshToken), true);

      const before = (await list(alice2.browser)).length;
      const counted = await revokedCount();
      const response = await revoke(alice2.browser, JSON.stringify({ others: true }));
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.deepEqual(await response.json(), { revoked: before - 1 });
      assert.equal(await revokedCount(), counted + before - 1, 'cloakroom_sessions_ended_total{reason="revoked"}');
      assert.deepEqual(response.headers.getSetCookie(), [], 'the current session keeps its cookie');
      assert.equal(await authenticated(alice1.browser), false, 'the other session is over');
      assert.equal(await authenticated(alice2.browser), true, 'this one is not');
      assert.equal(await authenticated(bob.browser), true, 'another user is untouched');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, alice1.refreshToken), false, 'revoked at the provider');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, alice2.refreshToken), true);
      assert.deepEqual((await list(alice2.browser)).map((s) => s.current), [true]);
    });

    test('POST /auth/sessions/revoke {"id"} of another own session ends it; of the current one acts as logout and clears the cookie', async () => {
      const alice1 = await signIn('alice');
      const alice2 = await signIn('alice');
      const listing = await list(alice2.browser);
      const other = listing.find((s) => !s.current) as ListedSession;
      const one = await revoke(alice2.browser, JSON.stringify({ id: other.id }));
      assert.deepEqual(await one.json(), { revoked: 1 });
      assert.equal(await authenticated(alice1.browser), false);
      const again = await revoke(alice2.browser, JSON.stringify({ id: other.id }));
      assert.deepEqual(await again.json(), { revoked: 0 }, 'an ended session\'s handle ends nothing more');

      const current = listing.find((s) => s.current) as ListedSession;
      const copy = alice2.browser.cookieHeader();
      const self = await revoke(alice2.browser, JSON.stringify({ id: current.id }));
      assert.deepEqual(await self.json(), { revoked: 1 });
      assert.ok(self.headers.getSetCookie().some((c) => /Max-Age=0/i.test(c)), 'the cookie is cleared');
      const replay = await fetch(`${stack.broker.url}/auth/session`, { headers: { cookie: copy, 'x-csrf': '1' } });
      assert.deepEqual(await replay.json(), { authenticated: false }, 'a copy of the cookie is dead too');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, alice2.refreshToken), false);
    });

    test('a logout takes its session out of the list', async () => {
      const alice1 = await signIn('alice');
      const alice2 = await signIn('alice');
      const handles = (await list(alice2.browser)).map((s) => s.id);
      const logout = await alice1.browser.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.broker.url } });
      assert.equal(logout.status, 303);
      const after = (await list(alice2.browser)).map((s) => s.id);
      assert.equal(after.length, handles.length - 1);
      assert.ok(after.every((id) => handles.includes(id)));
    });

    test('refusals: no X-CSRF or a foreign origin 403, no session 401, bad bodies 400 — and nothing ends', async () => {
      const alice1 = await signIn('alice');
      const alice2 = await signIn('alice');
      const noCsrf = await alice2.browser.fetch('/auth/sessions', { headers: { 'sec-fetch-site': 'same-origin' } });
      assert.equal(noCsrf.status, 403);
      assert.deepEqual(await noCsrf.json(), { error: 'csrf', message: 'the X-CSRF: 1 header is required' });
      const noCsrfRevoke = await alice2.browser.fetch('/auth/sessions/revoke', { method: 'POST', body: '{"others":true}', headers: { origin: stack.broker.url } });
      assert.equal(noCsrfRevoke.status, 403);
      const crossSite = await revoke(alice2.browser, '{"others":true}', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
      assert.equal(crossSite.status, 403);
      const anonymous = await stack.newBrowser().api('/auth/sessions');
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { error: string }).error, 'unauthenticated');
      const anonymousRevoke = await revoke(stack.newBrowser(), '{"others":true}');
      assert.equal(anonymousRevoke.status, 401);
      const get = await alice2.browser.api('/auth/sessions/revoke');
      assert.equal(get.status, 405);

      for (const body of payloads.user) {
        const response = await revoke(alice2.browser, body);
        assert.equal(response.status, 400, `body ${JSON.stringify(body)}`);
        assert.equal(((await response.json()) as { error: string }).error, 'invalid_request', `body ${JSON.stringify(body)}`);
      }
      const huge = await revoke(alice2.browser, JSON.stringify({ id: 'x'.repeat(4096) }));
      assert.equal(huge.status, 400, 'over the body cap');
      assert.equal(await authenticated(alice1.browser), true, 'no refused request ended a session');
      assert.equal(await authenticated(alice2.browser), true);
    });

    test('/ops/: a missing or wrong token is 401 with WWW-Authenticate: Bearer; the right one lists a user\'s sessions without "current"', async () => {
      await signIn('bob');
      for (const token of [undefined, 'wrong', `${OPS_TOKEN}x`, OPS_TOKEN.slice(0, -1)]) {
        for (const [path, init] of [['/ops/sessions?sub=user-bob', {}], ['/ops/revoke', { method: 'POST', body: '{"sub":"user-bob"}' }]] as const) {
          const response = await ops(path, { ...init, token });
          assert.equal(response.status, 401, `${path} with token ${token === undefined ? 'missing' : 'wrong'}`);
          assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
          assert.equal(response.headers.get('cache-control'), 'no-store');
          assert.equal(((await response.json()) as { error: string }).error, 'unauthenticated');
        }
      }
      const basic = await ops('/ops/sessions?sub=user-bob', { headers: { authorization: `Basic ${Buffer.from(`x:${OPS_TOKEN}`).toString('base64')}` } });
      assert.equal(basic.status, 401);
      const listed = await ops('/ops/sessions?sub=user-bob', { token: OPS_TOKEN });
      assert.equal(listed.status, 200);
      const sessions = ((await listed.json()) as { sessions: ListedSession[] }).sessions;
      assert.ok(sessions.length >= 1);
      for (const s of sessions) assert.deepEqual(Object.keys(s).sort(), ['createdAt', 'id', 'lastSeenAt', 'network', 'userAgent']);
      assert.equal((await ops('/ops/sessions', { token: OPS_TOKEN })).status, 400, 'no sub');
      assert.equal((await ops('/ops/sessions?sub=nobody', { token: OPS_TOKEN }).then((r) => r.json()) as { sessions: unknown[] }).sessions.length, 0);
      for (const body of payloads.ops) {
        const response = await ops('/ops/revoke', { method: 'POST', body, token: OPS_TOKEN });
        assert.equal(response.status, 400, `ops body ${JSON.stringify(body)}`);
      }
    });

    test('POST /ops/revoke by sub and by sid end those sessions and only those, revoking their refresh tokens', async () => {
      const alice1 = await signIn('alice');
      const alice2 = await signIn('alice');
      const bob1 = await signIn('bob');
      const bob2 = await signIn('bob');

      const bySid = await ops('/ops/revoke', { method: 'POST', body: JSON.stringify({ sid: bob1.sid }), token: OPS_TOKEN });
      assert.equal(bySid.status, 200);
      assert.deepEqual(await bySid.json(), { ok: true });
      assert.equal(await authenticated(bob1.browser), false, 'the sid\'s session ended');
      assert.equal(await authenticated(bob2.browser), true, 'another provider session of bob did not');
      assert.equal(await authenticated(alice1.browser), true);
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, bob1.refreshToken), false);
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, bob2.refreshToken), true);

      const bySub = await ops('/ops/revoke', { method: 'POST', body: JSON.stringify({ sub: 'user-alice', iss: stack.idp.issuer }), token: OPS_TOKEN });
      assert.deepEqual(await bySub.json(), { ok: true });
      assert.equal(await authenticated(alice1.browser), false);
      assert.equal(await authenticated(alice2.browser), false);
      assert.equal(await authenticated(bob2.browser), true, 'another user is untouched');
      for (const a of [alice1, alice2]) assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, a.refreshToken), false);
      const left = await ops('/ops/sessions?sub=user-alice', { token: OPS_TOKEN });
      assert.deepEqual(await left.json(), { sessions: [] });
      // Signing in again after the revoke works: the mark ends sessions created up to it, not later ones.
      const alice3 = await signIn('alice');
      assert.equal(await authenticated(alice3.browser), true);
    });

    test('POST /ops/revoke {"createdBefore"} ends every session signed in before then, not those after', async () => {
      const early = await signIn('alice');
      const earlyBob = await signIn('bob');
      const cutoff = Math.ceil(Date.now() / 1000);
      while (Date.now() < cutoff * 1000 + 5) await new Promise((resolve) => setTimeout(resolve, 20));
      const late = await signIn('alice');
      const response = await ops('/ops/revoke', { method: 'POST', body: JSON.stringify({ createdBefore: cutoff }), token: OPS_TOKEN });
      assert.deepEqual(await response.json(), { ok: true });
      assert.equal(await authenticated(early.browser), false);
      assert.equal(await authenticated(earlyBob.browser), false);
      assert.equal(await authenticated(late.browser), true);
      // Raise-only: an earlier instant afterwards revives nothing.
      await ops('/ops/revoke', { method: 'POST', body: JSON.stringify({ createdBefore: cutoff - 3600 }), token: OPS_TOKEN });
      assert.equal(await authenticated(early.browser), false);
      assert.deepEqual((await list(late.browser)).map((s) => s.current), [true], 'the list shows only the live session');
    });
  });
}

describe('no OPS_TOKEN', () => {
  before(() => stack.configure({ OPS_TOKEN: undefined }));
  test('every /ops/ endpoint answers 404 not_found, whatever the token or method', async () => {
    for (const [path, method] of [['/ops/revoke', 'POST'], ['/ops/revoke', 'GET'], ['/ops/sessions?sub=user-alice', 'GET']] as const) {
      for (const token of [undefined, OPS_TOKEN]) {
        const response = await ops(path, { method, token, body: method === 'POST' ? '{"sub":"user-alice"}' : undefined });
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.deepEqual(await response.json(), { error: 'not_found' });
      }
    }
  });
});

describe('the store unreachable', () => {
  before(() => stack.configure({ OPS_TOKEN }));
  after(() => stack.configure({}));
  test('list, revoke and /ops/ answer 503 store_unavailable, clear no cookie, and end nothing', async () => {
    const alice1 = await signIn('alice');
    const alice2 = await signIn('alice');
    const working = stack.store;
    const down = () => Promise.reject(new StoreUnavailableError());
    const unreachable: KeyValueStore = { get: down, getMany: down, set: down, setIfAbsent: down, compareAndSet: down, extendIfEquals: down, deleteIfEquals: down, delete: down };
    setStoreForTests(unreachable);
    try {
      const answers = [
        await alice2.browser.api('/auth/sessions'),
        await revoke(alice2.browser, '{"others":true}'),
        await ops('/ops/revoke', { method: 'POST', body: '{"sub":"user-alice"}', token: OPS_TOKEN }),
        await ops('/ops/sessions?sub=user-alice', { token: OPS_TOKEN }),
      ];
      for (const answer of answers) {
        assert.equal(answer.status, 503);
        assert.deepEqual(await answer.json(), { error: 'store_unavailable' });
        assert.deepEqual(answer.headers.getSetCookie(), []);
      }
    } finally {
      setStoreForTests(working);
    }
    assert.equal(await authenticated(alice1.browser), true);
    assert.equal(await authenticated(alice2.browser), true);
  });
});
