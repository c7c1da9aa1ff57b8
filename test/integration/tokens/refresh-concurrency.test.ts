/**
 * Access tokens per resource and refresh under concurrency, against a real oidc-provider
 * that rotates refresh tokens and revokes the whole grant when a spent one is used again
 * (RFC 9700 §4.14.2). Access tokens live 4 s, so the broker renews them 2 s after issue
 * (`tokenFromResponse`: min(TOKEN_REFRESH_SKEW, lifetime / 2) before expiry).
 *
 * The provider is reached through a gate on the issuer's port (test/helpers/provider-gate.ts),
 * so that it can be made unreachable and brought back on the same address, its token
 * endpoint can answer 503, and the refresh tokens it issues are at hand for the test to
 * revoke or replay one (they are never printed). Upstream records keep a hash of each
 * Authorization value: tokens are compared, never shown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDemoApi, type DemoApi } from '../../../demo/api.ts';
import { ProviderGate } from '../../helpers/provider-gate.ts';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream, type UpstreamRecord } from '../../helpers/upstream.ts';

const ORDERS = 'https://orders.example/';
const REPORTS = 'https://reports.example/';
const ACCESS_TOKEN_TTL = 4;
/** Past the default renewal point (half of the 4 s lifetime), with a margin. */
const UNTIL_STALE_MS = 2_300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let gate: ProviderGate;
let stack: Stack;
let up: TestUpstream;
let ordersApi: DemoApi;
let reportsApi: DemoApi;

before(async () => {
  gate = new ProviderGate();
  await gate.open();
  const issuer = `http://localhost:${gate.port}`;
  up = await startUpstream();
  ordersApi = await startDemoApi({ port: 0, issuer, audience: ORDERS, name: 'orders' });
  reportsApi = await startDemoApi({ port: 0, issuer, audience: REPORTS, name: 'reports' });
  stack = await startStack({
    idp: {
      issuer,
      accessTokenTtl: ACCESS_TOKEN_TTL,
      rotateRefreshTokens: true,
      resources: {
        [ORDERS]: { scope: 'orders:read orders:write', accessTokenTtl: 60 },
        [REPORTS]: { scope: 'reports:read', accessTokenTtl: 60 },
      },
    },
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/up', upstream: `${up.url}/v1`, auth: 'required' },
        { path: '/api/orders', upstream: `${ordersApi.url}/v1`, auth: 'required', resource: ORDERS, scopes: ['orders:read'] },
        { path: '/api/reports', upstream: `${reportsApi.url}/v1`, auth: 'required', resource: REPORTS, scopes: ['reports:read'] },
      ]),
    },
  });
  gate.target = stack.idp.port;
});

after(async () => {
  await stack?.close();
  await gate?.shut();
  await up?.close();
  await ordersApi?.close();
  await reportsApi?.close();
});

/* ------------------------------------------------------------------------------------ */

interface Answer {
  status: number;
  body: Record<string, unknown>;
  /** `name=value` of the session cookie(s) set, or undefined when none was set. */
  newCookie: string | undefined;
  /** The answer expired the session cookie. */
  cleared: boolean;
  setCookies: string[];
}

/** A same-origin API call carrying exactly `cookie` (not a jar: the test picks which copy). */
async function call(path: string, cookie: string): Promise<Answer> {
  const response = await fetch(`${stack.broker.url}${path}`, {
    headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', cookie },
  });
  const setCookies = response.headers.getSetCookie().filter((c) => c.startsWith('cloakroom'));
  const live = setCookies.filter((c) => !/Max-Age=0/i.test(c)).map((c) => c.split(';')[0] as string);
  // Cleared: names expired and none written (a write also expires the family's other names).
  const cleared = live.length === 0 && setCookies.some((c) => /Max-Age=0/i.test(c));
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    newCookie: live.length > 0 ? live.join('; ') : undefined,
    cleared,
    setCookies,
  };
}

/** The hash of the bearer token the upstream received for the last request to `path`. */
function bearerSeen(path: string): string {
  const record = [...up.records].reverse().find((r: UpstreamRecord) => r.url === `/v1${path}`);
  assert.ok(record?.bearer, `the upstream received a bearer token for ${path}`);
  return record.authorizationSha256 as string;
}

async function signIn(): Promise<{ browser: BrowserClient; cookie: string }> {
  const browser = stack.newBrowser();
  const callback = await browser.signIn('alice');
  assert.equal(callback.status, 303, 'sign-in completes');
  return { browser, cookie: browser.cookieHeader() };
}

const refreshRequests = () => stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token');

/** Posts to the provider's token endpoint directly, as the client (for a replay). */
async function tokenEndpoint(parameters: Record<string, string>, path = '/token'): Promise<{ status: number; body: { error?: string } }> {
  const credentials = Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(stack.clientSecret)}`).toString('base64');
  const response = await fetch(`${stack.idp.issuer}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${credentials}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(parameters),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as { error?: string }) : {} };
}

/* ------------------------------------------------------------------------------------ */

describe('one refresh for many parallel requests', () => {
  let before: { cookie: string; bearer: string };
  let refreshed: { cookies: string[]; bearer: string };

  test('50 parallel requests with an expired access token: all 200, exactly one refresh grant at the provider', async () => {
    stack.configure({});
    const { cookie } = await signIn();
    const first = await call('/api/up/first', cookie);
    assert.equal(first.status, 200);
    assert.equal(first.newCookie, undefined, 'a fresh token: no refresh, no new cookie');
    before = { cookie, bearer: bearerSeen('/first') };

    await sleep(UNTIL_STALE_MS);
    stack.idp.resetStats();
    up.reset();
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => call(`/api/up/parallel/${i}`, cookie)));

    assert.deepEqual(
      answers.map((a) => a.status),
      Array(50).fill(200),
    );
    assert.equal(stack.idp.stats.refreshGrants, 1, 'exactly one refresh grant');
    assert.equal(refreshRequests().length, 1, 'exactly one refresh request reached the provider');
    assert.equal(stack.idp.stats.grantsRevoked, 0, 'no grant revoked');

    const bearers = new Set(answers.map((_, i) => bearerSeen(`/parallel/${i}`)));
    assert.equal(bearers.size, 1, 'every request carried the same, refreshed token');
    const [bearer] = bearers as Set<string>;
    assert.notEqual(bearer, before.bearer, 'the token was renewed');

    // Every answer obtained with the new tokens hands the browser the cookie that holds them.
    for (const [i, answer] of answers.entries()) {
      assert.ok(answer.newCookie, `answer ${i} sets the new session cookie`);
      assert.equal(answer.cleared, false, `answer ${i} must not clear the cookie`);
    }
    refreshed = { cookies: answers.map((a) => a.newCookie as string), bearer: bearer as string };
  });

  test('each new cookie carries the new tokens: no further refresh', async () => {
    up.reset();
    for (const [i, cookie] of [refreshed.cookies[0], refreshed.cookies[49]].entries()) {
      const answer = await call(`/api/up/after/${i}`, cookie as string);
      assert.equal(answer.status, 200);
      assert.equal(bearerSeen(`/after/${i}`), refreshed.bearer);
      assert.equal(answer.newCookie, undefined);
    }
    assert.equal(stack.idp.stats.refreshGrants, 1);
  });

  test('within the grace window the old cookie adopts the new tokens (and gets the new cookie) instead of replaying', async () => {
    up.reset();
    const answer = await call('/api/up/stale', before.cookie);
    assert.equal(answer.status, 200);
    assert.equal(bearerSeen('/stale'), refreshed.bearer, 'the successor token, not a second refresh');
    assert.ok(answer.newCookie, 'the stale copy is replaced');
    assert.equal(stack.idp.stats.refreshGrants, 1, 'the spent refresh token was not sent again');
    assert.equal(stack.idp.stats.grantsRevoked, 0);

    const next = await call('/api/up/stale-next', answer.newCookie as string);
    assert.equal(next.status, 200);
    assert.equal(bearerSeen('/stale-next'), refreshed.bearer);
    assert.equal(stack.idp.stats.refreshGrants, 1);
  });
});

describe('after the grace window (REFRESH_GRACE_PERIOD=1)', () => {
  let oldCookie: string;
  let liveCookie: string;
  let liveBearer: string;

  test('the predecessor cookie still adopts the successor, however late: its answer may never have arrived', async () => {
    stack.configure({ REFRESH_GRACE_PERIOD: '1' });
    ({ cookie: oldCookie } = await signIn());
    await sleep(UNTIL_STALE_MS);
    stack.idp.resetStats();
    up.reset();

    const refreshedAnswer = await call('/api/up/refresh', oldCookie);
    assert.equal(refreshedAnswer.status, 200);
    assert.equal(stack.idp.stats.refreshGrants, 1);
    liveCookie = refreshedAnswer.newCookie as string;
    assert.ok(liveCookie);
    liveBearer = bearerSeen('/refresh');

    await sleep(1_300);
    const late = await call('/api/up/late', oldCookie);
    assert.equal(late.status, 200, 'the immediate predecessor adopts the live tokens after the grace window');
    assert.equal(bearerSeen('/late'), liveBearer, 'the successor token, not a second refresh');
    assert.ok(late.newCookie, 'the late copy is replaced by the newest session');
    assert.equal(refreshRequests().length, 1, 'the spent refresh token was not sent again');
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });

  test('a cookie two refreshes behind gets 401 session_expired for itself alone (SESSION_ANOMALY_POLICY=log); the live session keeps working', async () => {
    await sleep(UNTIL_STALE_MS);
    const live = await call('/api/up/live-again', liveCookie);
    assert.equal(live.status, 200);
    assert.equal(stack.idp.stats.refreshGrants, 2, 'the live holder moved past the old cookie\'s successor');
    assert.ok(live.newCookie);

    await sleep(1_300);
    const stale = await call('/api/up/stale', oldCookie);
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error, 'session_expired');
    assert.deepEqual(stale.setCookies, [], 'refused for itself alone: the cookie is not touched');
    assert.equal(refreshRequests().length, 2, 'no refresh request at all for the stale copy');
    assert.equal(stack.idp.stats.grantsRevoked, 0, 'the live grant is intact');

    const newest = await call('/api/up/newest', live.newCookie as string);
    assert.equal(newest.status, 200, 'the live session is unaffected');
  });
});

describe('TOKEN_REFRESH_SKEW', () => {
  test('a token is renewed the configured skew before it expires, not earlier', async () => {
    // Skew 1 s of a 4 s token: renewed from 3 s after issue (the default would be 2 s).
    stack.configure({ TOKEN_REFRESH_SKEW: '1' });
    const { cookie } = await signIn();
    const signedIn = Date.now();
    stack.idp.resetStats();

    await sleep(Math.max(0, signedIn + 2_300 - Date.now()));
    const early = await call('/api/up/early', cookie);
    assert.equal(early.status, 200);
    assert.equal(stack.idp.stats.refreshGrants, 0, 'still fresh at 2.3 s with a 1 s skew');
    assert.equal(early.newCookie, undefined);

    await sleep(Math.max(0, signedIn + 3_200 - Date.now()));
    const due = await call('/api/up/due', cookie);
    assert.equal(due.status, 200);
    assert.equal(stack.idp.stats.refreshGrants, 1, 'renewed within the last second');
    assert.ok(due.newCookie);
  });
});

describe('access tokens per resource (RFC 8707)', () => {
  test('each API gets a JWT for its own audience with its own scopes, refreshed once each', async () => {
    stack.configure({});
    const { browser } = await signIn();
    stack.idp.resetStats();

    const orders = await browser.api('/api/orders/list');
    assert.equal(orders.status, 200, 'the orders API accepted its token');
    const seenByOrders = (await orders.json()) as { api: string; audience: string; scope: string };
    assert.equal(seenByOrders.api, 'orders');
    assert.equal(seenByOrders.audience, ORDERS);
    assert.deepEqual(seenByOrders.scope.split(' ').sort(), ['orders:read']);

    const reports = await browser.api('/api/reports/monthly');
    assert.equal(reports.status, 200, 'the reports API accepted its token');
    const seenByReports = (await reports.json()) as { api: string; audience: string; scope: string };
    assert.equal(seenByReports.audience, REPORTS);
    assert.deepEqual(seenByReports.scope.split(' ').sort(), ['reports:read']);

    assert.deepEqual(
      refreshRequests().map((r) => [r.resource, r.ok]),
      [
        [ORDERS, true],
        [REPORTS, true],
      ],
    );

    // Both tokens are kept: calling again needs no refresh.
    assert.equal((await browser.api('/api/orders/again')).status, 200);
    assert.equal((await browser.api('/api/reports/again')).status, 200);
    assert.equal(stack.idp.stats.refreshGrants, 2);
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });
});

describe('the provider rejects the grant (invalid_grant)', () => {
  test('refresh token revoked at the provider: 401 session_expired and the cookie cleared', async () => {
    stack.configure({});
    gate.issuedRefreshTokens.length = 0;
    const { cookie } = await signIn();
    assert.equal(gate.issuedRefreshTokens.length, 1, 'the sign-in issued one refresh token');
    const revoked = await tokenEndpoint(
      { token: gate.issuedRefreshTokens[0] as string, token_type_hint: 'refresh_token' },
      '/token/revocation',
    );
    assert.equal(revoked.status, 200, 'revoked at the provider');

    await sleep(UNTIL_STALE_MS);
    stack.idp.resetStats();
    up.reset();
    const answer = await call('/api/up/x', cookie);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'session_expired');
    assert.ok(answer.cleared, 'the session cookie is expired (Max-Age=0)');
    assert.deepEqual(up.records, [], 'the API saw nothing');
    assert.deepEqual(
      refreshRequests().map((r) => r.error),
      ['invalid_grant'],
    );

    // The session is over for every copy of the cookie.
    const again = await call('/api/up/y', cookie);
    assert.equal(again.status, 401);
    assert.ok(again.cleared);
    assert.equal(stack.idp.stats.refreshGrants, 0);
    // Ended by the broker, not refused by the provider a second time: the copy never
    // takes the revoked refresh token back to the token endpoint.
    assert.equal(refreshRequests().length, 1, 'the ended session made no second refresh request');
  });

  test('the provider detects a replayed refresh token and revokes the grant: the next refresh ends the session', async () => {
    stack.configure({});
    gate.issuedRefreshTokens.length = 0;
    const { cookie } = await signIn();
    await sleep(UNTIL_STALE_MS);
    const refreshedAnswer = await call('/api/up/rotate', cookie);
    assert.equal(refreshedAnswer.status, 200);
    assert.equal(gate.issuedRefreshTokens.length, 2, 'rotated once');

    // Someone who stole the first refresh token uses it: reuse detection revokes the grant.
    stack.idp.resetStats();
    const replay = await tokenEndpoint({ grant_type: 'refresh_token', refresh_token: gate.issuedRefreshTokens[0] as string });
    assert.equal(replay.body.error, 'invalid_grant');
    assert.equal(stack.idp.stats.grantsRevoked, 1, 'the provider revoked the grant');

    await sleep(UNTIL_STALE_MS);
    const answer = await call('/api/up/after-theft', refreshedAnswer.newCookie as string);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'session_expired');
    assert.ok(answer.cleared);
  });
});

describe('the provider is unavailable: 503 idp_unavailable, the session kept', () => {
  test('token endpoint answers 503: 503 idp_unavailable, no cookie change; works once the provider recovers', async () => {
    stack.configure({});
    const { cookie } = await signIn();
    await sleep(UNTIL_STALE_MS);
    stack.idp.resetStats();
    up.reset();

    gate.failTokenEndpoint = true;
    let answer: Answer;
    try {
      answer = await call('/api/up/x', cookie);
    } finally {
      gate.failTokenEndpoint = false;
    }
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error, 'idp_unavailable');
    assert.deepEqual(answer.setCookies, [], 'the session cookie is kept as it is');
    assert.deepEqual(up.records, []);

    const session = await fetch(`${stack.broker.url}/auth/session`, { headers: { 'x-csrf': '1', cookie } });
    assert.equal(((await session.json()) as { authenticated: boolean }).authenticated, true, 'still signed in');

    const recovered = await call('/api/up/y', cookie);
    assert.equal(recovered.status, 200, 'works again once the provider answers');
    assert.ok(recovered.newCookie);
    assert.equal(stack.idp.stats.refreshGrants, 1);
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });

  test('provider unreachable (connection refused): 503, session kept; works again once it is back', async () => {
    stack.configure({});
    const { cookie } = await signIn();
    await sleep(UNTIL_STALE_MS);
    stack.idp.resetStats();

    await gate.shut();
    let answer: Answer;
    try {
      answer = await call('/api/up/x', cookie);
    } finally {
      await gate.open();
    }
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error, 'idp_unavailable');
    assert.deepEqual(answer.setCookies, [], 'the session cookie is kept as it is');
    assert.equal(stack.idp.stats.refreshGrants, 0);

    const recovered = await call('/api/up/y', cookie);
    assert.equal(recovered.status, 200, 'works again once the provider is back');
    assert.ok(recovered.newCookie);
    assert.equal(stack.idp.stats.refreshGrants, 1);
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });
});
