/**
 * Stolen-session detection (lib/security/session-anomaly.ts) against the real
 * oidc-provider and a real upstream, addresses presented through one trusted proxy hop:
 * what each change counts, what `log` and `end` do on the proxy and on /auth/session, and
 * — against a real redis-server that stops answering (SIGSTOP) — that a store outage
 * never ends a session and never counts twice.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../lib/config/load.ts';
import { networkOwner } from '../../../lib/ops/ip-database.ts';
import { metrics } from '../../../lib/ops/metrics.ts';
import { browserOf, checkSessionOrigin, originOf } from '../../../lib/security/session-anomaly.ts';
import { isSessionEnded } from '../../../lib/session/revocation.ts';
import type { Session } from '../../../lib/session/session.ts';
import { RedisStore } from '../../../lib/stores/redis.ts';
import { StoreUnavailableError } from '../../../lib/stores/store.ts';
import { authorizeWithoutBrowser } from '../../helpers/idp-login.ts';
import { writeMmdb } from '../../helpers/mmdb.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const CHROME_120 = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36';
const CHROME_120_PATCH = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.216 Safari/537.36';
const FIREFOX_128 = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';

const count = async (kind: string) => (await metrics.sessionAnomalies.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
const ended = async (reason: string) => (await metrics.sessionsEnded.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

test('the browser signal is family and major version; a patch release or a script is not a change', () => {
  assert.equal(browserOf(CHROME_120), 'Chrome 120');
  assert.equal(browserOf(CHROME_120_PATCH), 'Chrome 120');
  assert.equal(browserOf(FIREFOX_128), 'Firefox 128');
  assert.equal(browserOf('Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15'), 'Safari 17');
  assert.equal(browserOf(null), 'other');
  assert.equal(browserOf(''), 'other');
  assert.equal(browserOf('curl/8.5.0'), 'other');
  assert.ok(browserOf('x'.repeat(10_000)).length <= 48);
});

test('the network signal is the /24 or /48 of the address the trusted hop wrote, never the address', () => {
  const config = { trustedProxyHops: 1 };
  const at = (xff: string) => originOf(new Request('http://b/', { headers: { 'x-forwarded-for': xff, 'user-agent': CHROME_120 } }), config, '10.0.0.2').network;
  assert.equal(at('203.0.113.10'), '203.0.113.0/24');
  assert.equal(at('6.6.6.6, 203.0.113.99'), '203.0.113.0/24', 'a forged entry left of the hop is ignored');
  assert.equal(at('2001:db8:1234:5678::1'), '2001:db8:1234::/48');
});

/** An offline IP database the test writes: two ranges of one provider, one of another country's. */
const geoDir = mkdtempSync(join(tmpdir(), 'cloakroom-geoip-'));
const GEOIP_DB = join(geoDir, 'test.mmdb');
writeMmdb(GEOIP_DB, [
  { network: '203.0.113.0/24', country: 'NL', asn: 64500 },
  { network: '198.51.100.0/24', country: 'NL', asn: 64500 },
  { network: '192.0.2.0/24', country: 'BR', asn: 64511 },
]);
after(() => rmSync(geoDir, { recursive: true, force: true }));

test('SESSION_GEOIP_DB: the owner of an address is its autonomous system and country; unknown addresses have none', () => {
  assert.equal(networkOwner(GEOIP_DB, '203.0.113.10'), 'AS64500 NL');
  assert.equal(networkOwner(GEOIP_DB, '192.0.2.44'), 'AS64511 BR');
  assert.equal(networkOwner(GEOIP_DB, '10.1.2.3'), undefined);
  assert.equal(networkOwner(GEOIP_DB, 'unknown'), undefined);
  assert.equal(networkOwner(GEOIP_DB, '2001:db8::1'), undefined);
});

test('SESSION_GEOIP_DB that is missing or not an MMDB file stops the start, naming the variable', () => {
  const base = { APP_BASE_URL: 'https://app.example', OIDC_ISSUER: 'https://idp.example', OIDC_CLIENT_ID: 'c', OIDC_CLIENT_SECRET: 's'.repeat(32), SESSION_SECRETS: randomBytes(32).toString('base64url'), BFF_ROUTES: '[]' };
  const junk = join(geoDir, 'junk.mmdb');
  writeFileSync(junk, 'not a database');
  for (const [path, why] of [[join(geoDir, 'absent.mmdb'), 'does not exist'], [junk, 'could not be read as an MMDB database']]) {
    assert.throws(() => loadConfig({ ...base, SESSION_GEOIP_DB: path }), (error: unknown) => error instanceof ConfigError && error.message.includes(`SESSION_GEOIP_DB ${why}`));
  }
  assert.equal(loadConfig({ ...base, SESSION_GEOIP_DB: GEOIP_DB }).geoipDb, GEOIP_DB);
});

describe('through the broker, TRUSTED_PROXY_HOPS=1', () => {
  let stack: Stack;
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
    stack = await startStack();
  });
  after(async () => {
    await stack?.close();
    await up?.close();
  });

  function configure(policy: 'log' | 'end', geoipDb?: string) {
    stack.configure({
      TRUSTED_PROXY_HOPS: '1',
      SESSION_ANOMALY_POLICY: policy,
      SESSION_GEOIP_DB: geoipDb,
      BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url, auth: 'required' }]),
    });
  }

  async function signIn(address: string, userAgent: string): Promise<BrowserClient> {
    const browser = stack.newBrowser();
    const callback = await authorizeWithoutBrowser(await browser.startLogin(), { username: 'alice', password: 'alice-password' }, `${stack.broker.url}/auth/callback`, { jar: browser.jar });
    const answer = await browser.fetch(callback.pathname + callback.search, { headers: { 'x-forwarded-for': address, 'user-agent': userAgent } });
    assert.equal(answer.status, 303);
    return browser;
  }

  const from = (browser: BrowserClient, path: string, address: string, userAgent: string) =>
    browser.api(path, { headers: { 'x-forwarded-for': address, 'user-agent': userAgent } });

  test('log: a new network or browser alone counts once per new value; both at once is an anomaly counted once, and the session lives', async () => {
    configure('log');
    const browser = await signIn('203.0.113.10', CHROME_120);
    const before = { network: await count('network'), browser: await count('browser'), both: await count('network_and_browser') };

    assert.equal((await from(browser, '/api/up/a', '203.0.113.77', CHROME_120_PATCH)).status, 200);
    assert.equal(await count('network'), before.network, 'the same /24 and major version is no change');
    for (let i = 0; i < 3; i++) assert.equal((await from(browser, '/api/up/b', '198.51.100.7', CHROME_120)).status, 200);
    assert.equal(await count('network'), before.network + 1, 'counted once for the new network');
    assert.equal((await from(browser, '/api/up/c', '198.51.100.8', CHROME_120)).status, 200);
    assert.equal(await count('network'), before.network + 1, 'the same /24 again');
    assert.equal((await from(browser, '/api/up/d', '203.0.113.10', FIREFOX_128)).status, 200);
    assert.equal(await count('browser'), before.browser + 1);

    for (let i = 0; i < 2; i++) assert.equal((await from(browser, '/api/up/e', '192.0.2.44', FIREFOX_128)).status, 200, 'log: the request goes through');
    const session = await (await from(browser, '/auth/session', '192.0.2.44', FIREFOX_128)).json();
    assert.equal(session.authenticated, true);
    assert.equal(await count('network_and_browser'), before.both + 1, 'the anomaly counted once, however often it is seen');
    assert.equal(await count('network'), before.network + 1, 'an anomaly does not count as a single change too');
  });

  test('end: both changed on /auth/session ends the session (authenticated false, cookie cleared, counted), and its every copy is refused', async () => {
    configure('end');
    const browser = await signIn('203.0.113.10', CHROME_120);
    const copy = browser.cookieHeader();
    const endedBefore = await ended('anomaly');
    const single = await from(browser, '/api/up/x', '198.51.100.7', CHROME_120);
    assert.equal(single.status, 200, 'a single change is never ended, whatever the policy');

    const answer = await from(browser, '/auth/session', '192.0.2.44', FIREFOX_128);
    assert.deepEqual(await answer.json(), { authenticated: false });
    assert.ok(answer.headers.getSetCookie().some((c) => /^cloakroom=;/.test(c) || /Max-Age=0/i.test(c)), 'the cookie is cleared');
    assert.equal(await ended('anomaly'), endedBefore + 1);

    const original = await fetch(new URL('/api/up/y', stack.broker.url), {
      headers: { cookie: copy, 'x-csrf': '1', 'sec-fetch-site': 'same-origin', 'x-forwarded-for': '203.0.113.10', 'user-agent': CHROME_120 },
    });
    assert.equal(original.status, 401, 'the victim\'s own copy is ended too');
  });

  test('end: both changed on the proxy answers 401 session_expired and nothing reaches the API', async () => {
    configure('end');
    const browser = await signIn('203.0.113.10', CHROME_120);
    up.reset();
    const answer = await from(browser, '/api/up/steal', '192.0.2.44', FIREFOX_128);
    assert.equal(answer.status, 401);
    assert.deepEqual(await answer.json(), { error: 'session_expired', message: 'this session was ended: it was used from another network and browser' });
    assert.equal(up.records.length, 0);
  });
});

describe('with SESSION_GEOIP_DB, end', () => {
  let stack: Stack;
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
    stack = await startStack();
    stack.configure({
      TRUSTED_PROXY_HOPS: '1',
      SESSION_ANOMALY_POLICY: 'end',
      SESSION_GEOIP_DB: GEOIP_DB,
      BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url, auth: 'required' }]),
    });
  });
  after(async () => {
    await stack?.close();
    await up?.close();
  });

  test("another range of the same provider with a new browser is one change (the browser), not an anomaly; another provider's with a new browser ends the session", async () => {
    const browser = stack.newBrowser();
    const callback = await authorizeWithoutBrowser(await browser.startLogin(), { username: 'alice', password: 'alice-password' }, `${stack.broker.url}/auth/callback`, { jar: browser.jar });
    assert.equal((await browser.fetch(callback.pathname + callback.search, { headers: { 'x-forwarded-for': '203.0.113.10', 'user-agent': CHROME_120 } })).status, 303);
    const call = (address: string, userAgent: string) => browser.api('/api/up/x', { headers: { 'x-forwarded-for': address, 'user-agent': userAgent } });
    const networkBefore = await count('network');
    const both = await count('network_and_browser');
    assert.equal((await call('198.51.100.7', FIREFOX_128)).status, 200, 'AS64500 NL both times: only the browser changed');
    assert.equal(await count('network'), networkBefore);
    assert.equal(await count('network_and_browser'), both);
    const thief = await call('192.0.2.44', FIREFOX_128);
    assert.equal(thief.status, 401);
    assert.equal(await count('network_and_browser'), both + 1);
  });
});

describe('a shared store that stops answering (real redis-server, SIGSTOP)', () => {
  let redis: RedisServer;
  let store: RedisStore;
  before(async () => {
    redis = await startRedis();
    store = new RedisStore({ url: redis.url, keyPrefix: 'anomaly-outage:' });
  });
  after(async () => {
    redis?.resume();
    await store?.close();
    await redis?.close();
  });

  const env = (policy: 'log' | 'end') => ({
    APP_BASE_URL: 'https://app.example',
    OIDC_ISSUER: 'https://idp.example',
    OIDC_CLIENT_ID: 'c',
    OIDC_CLIENT_SECRET: 's'.repeat(32),
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    TRUSTED_PROXY_HOPS: '1',
    SESSION_ANOMALY_POLICY: policy,
    BFF_ROUTES: '[]',
  });
  const session = (): Session => ({
    v: 1,
    id: randomBytes(16).toString('base64url'),
    iss: 'https://idp.example',
    sub: 'alice',
    user: { sub: 'alice' },
    tokens: {},
    createdAt: Date.now(),
    touchedAt: Date.now(),
    signedInFrom: { network: '203.0.113.0/24', browser: 'Chrome 120' },
  });
  const stolen = new Request('https://app.example/api/x', { headers: { 'x-forwarded-for': '192.0.2.44, 10.0.0.2', 'user-agent': FIREFOX_128 } });

  test('log: the request is not failed and nothing is counted while the store is down; never counted twice once it is back', async () => {
    const config = loadConfig(env('log'));
    const s = session();
    const before = await count('network_and_browser');
    redis.pause();
    try {
      await checkSessionOrigin(stolen, s, config, store);
    } finally {
      redis.resume();
    }
    assert.equal(await count('network_and_browser'), before, 'not counted without the shared mark');
    // The SET NX that timed out may still have landed once Redis woke up: then the sighting
    // stays uncounted (at most once, never twice).
    for (let i = 0; i < 3; i++) await checkSessionOrigin(stolen, s, config, store);
    const afterRecovery = await count('network_and_browser');
    assert.ok(afterRecovery <= before + 1, 'never counted twice');
    const other = session();
    for (let i = 0; i < 3; i++) await checkSessionOrigin(stolen, other, config, store);
    assert.equal(await count('network_and_browser'), afterRecovery + 1, 'with the store back, another session is counted once');
  });

  test('end: the request answers store_unavailable and the session is not ended', async () => {
    const config = loadConfig(env('end'));
    const s = session();
    const endedBefore = await ended('anomaly');
    redis.pause();
    let error: unknown;
    try {
      await checkSessionOrigin(stolen, s, config, store).catch((e: unknown) => (error = e));
    } finally {
      redis.resume();
    }
    assert.ok(error instanceof StoreUnavailableError || (error as { code?: string }).code === 'store_unavailable', `refused as store_unavailable, not ${String(error)}`);
    assert.equal(await ended('anomaly'), endedBefore);
    assert.equal(await isSessionEnded(store, config, s), false, 'the session is kept');
  });
});
