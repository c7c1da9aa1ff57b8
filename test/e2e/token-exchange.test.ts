/**
 * Token exchange per route (RFC 8693; issue 12, item 2) through the production server
 * (`npm start`), the real oidc-provider with its token-exchange grant (registerGrantType,
 * demo/idp.ts) and a real API that verifies JWTs with jose against the provider's JWKS and
 * accepts only its own audience: the API gets the narrow token, never the sign-in's; it
 * is cached, exchanged once under concurrency, exchanged after a refresh when the subject
 * had expired; an outage is 503 with the session kept, a refused subject 401.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type Provider from 'oidc-provider';
import { startDemoApi, type DemoApi } from '../../demo/api.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ORDERS = 'urn:cloakroom:orders';
/** Exchanged tokens live 4 s; with TOKEN_REFRESH_SKEW=1 each is renewed 3 s after it was issued. */
const EXCHANGED_TTL = 4;

let stack: ProductionStack;
let ordersApi: DemoApi;
/** Set by a test: the provider's token endpoint answers 503 (an outage) while true. */
let outage = false;

function installOutageSwitch(provider: Provider): void {
  provider.use(async (ctx, next) => {
    if (outage && ctx.method === 'POST' && ctx.path === '/token') {
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable' };
      return;
    }
    await next();
  });
}

before(async () => {
  stack = await startProductionStack({
    npmStart: true,
    idp: {
      // The sign-in's own (opaque) token lives 8 s: renewed 7 s after each refresh.
      accessTokenTtl: 8,
      exchangeAudiences: { [ORDERS]: { scope: 'orders:read orders:write', accessTokenTtl: EXCHANGED_TTL } },
      extend: installOutageSwitch,
    },
    env: { TOKEN_REFRESH_SKEW: '1' },
    extraRoutes: async (idp) => {
      ordersApi = await startDemoApi({ port: 0, issuer: idp.issuer, audience: ORDERS, name: 'orders' });
      return [
        { path: '/api/orders', upstream: ordersApi.url, auth: 'required', methods: ['GET', 'POST'], exchange: { audience: ORDERS, scope: 'orders:read' } },
        // An audience the provider will not issue: a configuration problem, not the user's.
        { path: '/api/ledger', upstream: ordersApi.url, auth: 'required', methods: ['GET'], exchange: { audience: 'urn:cloakroom:ledger', scope: 'ledger:read' } },
      ];
    },
  });
});
after(async () => {
  await stack?.close();
  await ordersApi?.close();
});

async function signedIn(): Promise<BrowserClient> {
  const browser = new BrowserClient(stack.url);
  const callback = await browser.signIn('alice');
  assert.equal(callback.status, 303, await callback.text());
  return browser;
}

async function ordersCall(browser: BrowserClient): Promise<{ status: number; body: Record<string, unknown>; setCookie: string | null }> {
  const response = await browser.api('/api/orders/list');
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, setCookie: response.headers.get('set-cookie') };
}

describe('token exchange per route through npm start', () => {
  test('the API receives a token for its audience and the route\'s scope only, never the sign-in token', async () => {
    const browser = await signedIn();
    const before = stack.idp.stats.exchangeGrants;
    const answer = await ordersCall(browser);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    // The API verified it (signature from the provider's JWKS, issuer, typ at+jwt, aud).
    assert.equal(answer.body.api, 'orders');
    assert.equal(answer.body.audience, ORDERS);
    assert.equal(answer.body.scope, 'orders:read', 'only the route\'s scope: not orders:write, not openid or offline_access');
    assert.equal(answer.body.subject, 'user-alice');
    assert.equal(answer.body.grantType, 'token-exchange', 'the API sees how the token was obtained (the demo page shows it)');
    assert.equal(stack.idp.stats.exchangeGrants, before + 1);
    // The sign-in's own access token is a different (opaque) token the API would refuse.
    const exchanged = stack.issued.filter((t) => t.grantType === 'urn:ietf:params:oauth:grant-type:token-exchange');
    const signIn = stack.issued.filter((t) => t.grantType === 'authorization_code' && t.kind === 'access_token');
    assert.ok(exchanged.length > 0 && signIn.length > 0);
    assert.ok(!signIn.some((s) => exchanged.some((e) => e.value === s.value)));
    const requests = stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'urn:ietf:params:oauth:grant-type:token-exchange');
    assert.ok(requests.every((r) => r.ok && r.clientAuth === 'client_secret_basic'));
  });

  test('cached: a second call within the token\'s life makes no new exchange', async () => {
    const browser = await signedIn();
    assert.equal((await ordersCall(browser)).status, 200);
    const before = stack.idp.stats.exchangeGrants;
    for (let i = 0; i < 5; i++) assert.equal((await ordersCall(browser)).status, 200);
    assert.equal(stack.idp.stats.exchangeGrants, before, 'no exchange while the cached token is fresh');
    // Another session gets its own token: the cache is per session.
    const other = await signedIn();
    assert.equal((await ordersCall(other)).status, 200);
    assert.equal(stack.idp.stats.exchangeGrants, before + 1);
  });

  test('50 concurrent calls after the exchanged token expired cost exactly one exchange', async () => {
    const browser = await signedIn();
    assert.equal((await ordersCall(browser)).status, 200);
    await sleep((EXCHANGED_TTL - 1) * 1000 + 200);
    const before = stack.idp.stats.exchangeGrants;
    const answers = await Promise.all(Array.from({ length: 50 }, () => ordersCall(browser)));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(stack.idp.stats.exchangeGrants, before + 1, 'one exchange for 50 concurrent calls');
    // They all carried the same new token (one issue time).
    assert.equal(new Set(answers.map((a) => a.body.issuedAt)).size, 1);
  });

  test('an expired subject token is refreshed first, then exchanged', async () => {
    const browser = await signedIn();
    assert.equal((await ordersCall(browser)).status, 200);
    // Past the sign-in token's own end (8 s): the provider would refuse it as a subject.
    await sleep(8_300);
    const refreshes = stack.idp.stats.refreshGrants;
    const exchanges = stack.idp.stats.exchangeGrants;
    const answer = await ordersCall(browser);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(stack.idp.stats.refreshGrants, refreshes + 1, 'the subject token was refreshed');
    assert.equal(stack.idp.stats.exchangeGrants, exchanges + 1, 'then exchanged');
    assert.ok(answer.setCookie, 'the refreshed session is written back');
  });

  test('a provider outage during the exchange is 503 idp_unavailable and the session is kept', async () => {
    const browser = await signedIn();
    assert.equal((await ordersCall(browser)).status, 200);
    await sleep((EXCHANGED_TTL - 1) * 1000 + 200);
    outage = true;
    let answer;
    try {
      answer = await ordersCall(browser);
    } finally {
      outage = false;
    }
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error, 'idp_unavailable');
    assert.equal(answer.setCookie, null, 'no cookie cleared');
    const again = await ordersCall(browser);
    assert.equal(again.status, 200, 'the same session works once the provider is back');
  });

  test('an audience the provider will not issue is 503 (configuration), the session kept', async () => {
    const browser = await signedIn();
    const response = await browser.api('/api/ledger/x');
    assert.equal(response.status, 503);
    assert.equal(((await response.json()) as { error: string }).error, 'idp_unavailable');
    assert.equal(response.headers.get('set-cookie'), null);
    assert.equal((await ordersCall(browser)).status, 200);
    // One JSON object per line; the order of its fields is the logger's, not ours.
    const refusals = (stack.serverStderr() + stack.serverStdout())
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.event === 'token_exchange_refused');
    assert.ok(refusals.some((entry) => entry.audience === 'urn:cloakroom:ledger'), 'the refusal is logged with the audience');
  });

  test('a subject token the provider refuses (its grant revoked) is 401 session_expired and the cookie cleared', async () => {
    const browser = await signedIn();
    assert.equal((await ordersCall(browser)).status, 200);
    // Revoke the sign-in's grant at the provider, as an administrator would.
    const signIn = stack.issued.findLast((t) => t.grantType === 'authorization_code' && t.kind === 'access_token');
    const token = await stack.idp.provider.AccessToken.find(signIn?.value as string);
    assert.ok(token?.grantId);
    await stack.idp.provider.Grant.adapter.revokeByGrantId(token.grantId);
    await sleep((EXCHANGED_TTL - 1) * 1000 + 200);
    const answer = await ordersCall(browser);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'session_expired');
    assert.match(answer.setCookie ?? '', /Max-Age=0|Expires=Thu, 01 Jan 1970/i);
    assert.equal((await ordersCall(browser)).status, 401);
  });

  test('no exchanged token reaches the logs', () => {
    const output = stack.serverStderr() + stack.serverStdout();
    for (const issued of stack.issued) assert.ok(!output.includes(issued.value), `a ${issued.kind} (${issued.grantType}) is in the server output`);
  });
});

describe('a provider without the grant', () => {
  test('npm start refuses to start, naming the route and the fix', async () => {
    await assert.rejects(
      startProductionStack({
        npmStart: true,
        extraRoutes: async () => [{ path: '/api/orders', upstream: 'http://127.0.0.1:9', auth: 'required', exchange: { audience: ORDERS, scope: 'orders:read' } }],
      }),
      (error: Error) => {
        assert.match(error.message, /stopped before it was ready \(exit 1\)/);
        assert.match(error.message, /Cloakroom cannot start/);
        assert.match(error.message, /route "\/api\/orders" has "exchange".*grant_types_supported/);
        return true;
      },
    );
  });
});

describe('two instances sharing Redis', () => {
  let shared: ProductionStack;
  let redis: RedisServer;
  let api: DemoApi;
  let second: { port: number; close(): Promise<void> };
  before(async () => {
    redis = await startRedis();
    shared = await startProductionStack({
      npmStart: true,
      idp: { exchangeAudiences: { [ORDERS]: { scope: 'orders:read', accessTokenTtl: EXCHANGED_TTL } } },
      env: { TOKEN_REFRESH_SKEW: '1', REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'e2e-exchange:' },
      extraRoutes: async (idp) => {
        api = await startDemoApi({ port: 0, issuer: idp.issuer, audience: ORDERS, name: 'orders' });
        return [{ path: '/api/orders', upstream: api.url, auth: 'required', methods: ['GET'], exchange: { audience: ORDERS, scope: 'orders:read' } }];
      },
    });
    second = await shared.startSecondInstance();
  });
  after(async () => {
    await shared?.close();
    await api?.close();
    await redis?.close();
  });

  test('50 concurrent calls spread over both instances after expiry cost one exchange; the cache is shared', async () => {
    const browser = new BrowserClient(shared.url);
    assert.equal((await browser.signIn('alice')).status, 303);
    const cookie = browser.cookieHeader();
    const call = (port: number) =>
      rawRequest(`http://127.0.0.1:${port}`, {
        path: '/api/orders/x',
        headers: [['host', new URL(shared.url).host], ['cookie', cookie], ['x-csrf', '1'], ['sec-fetch-site', 'same-origin']],
      });
    assert.equal((await call(shared.port)).status, 200);
    const afterFirst = shared.idp.stats.exchangeGrants;
    assert.equal((await call(second.port)).status, 200, 'the other instance uses the token the first exchanged');
    assert.equal(shared.idp.stats.exchangeGrants, afterFirst);

    await sleep((EXCHANGED_TTL - 1) * 1000 + 200);
    const before = shared.idp.stats.exchangeGrants;
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => call(i % 2 === 0 ? shared.port : second.port)));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(shared.idp.stats.exchangeGrants, before + 1, 'one exchange across both instances');
  });
});
