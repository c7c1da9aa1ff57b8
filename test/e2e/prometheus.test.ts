/**
 * Operating the broker with a real Prometheus (issue 10, "Tests"): Debian's `prometheus`
 * scrapes two real `npm start` instances sharing one real redis-server, with the bearer
 * OPS_TOKEN read from a file (`authorization.credentials_file`, the README's snippet), and
 * evaluates the repository's alert rules. After sign-ins, refreshes and proxied calls the
 * test reads the figures back through Prometheus's query API, and checks:
 *   - the sign-in counter and the proxy counter in one scrape of the production build
 *     (one registry per process: prom-client #640);
 *   - stolen-session detection with addresses presented through a trusted proxy hop
 *     (TRUSTED_PROXY_HOPS=1, X-Forwarded-For as the proxy writes it) and an offline IP
 *     database (SESSION_GEOIP_DB, an MMDB file the test writes): a change of network
 *     alone and of browser alone each counted once across both instances; both at once an
 *     anomaly that, under SESSION_ANOMALY_POLICY=end, answers 401 session_expired, is
 *     refused on the other instance and has its refresh token revoked at the provider;
 *   - refresh-token reuse counted and ending the session;
 *   - the alerts for reuse and anomaly firing in Prometheus, every rule healthy, every
 *     dashboard panel's PromQL evaluated without error on metric names that exist;
 *   - no label or value Prometheus holds carries a token, a cookie, a secret, a user or a
 *     full client address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sleep } from '../helpers/calls.ts';
import { authorizeWithoutBrowser } from '../helpers/idp-login.ts';
import { writeMmdb } from '../helpers/mmdb.ts';
import { CLIENT_ID, startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { DASHBOARD, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { isActiveAtProvider } from '../helpers/sessions.ts';
import { BrowserClient } from '../helpers/stack.ts';
import { call, instanceAt, pollUntil, untilReady, type Instance } from '../helpers/two-instances.ts';

const OPS_TOKEN = randomBytes(32).toString('base64url');
const CHROME_120 = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36';
const CHROME_121 = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.85 Safari/537.36';
const FIREFOX_128 = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
/** Full client addresses: Prometheus and the logs may show their /24, never these. */
const HOME = '203.0.113.10';
const HOME_OTHER_HOST = '203.0.113.55';
const PHONE = '198.51.100.7';
const THIEF = '192.0.2.44';

/** Each test range its own provider; 10/8 (the hop) unknown to it. */
const geoDir = mkdtempSync(join(tmpdir(), 'cloakroom-e2e-geoip-'));
const GEOIP_DB = join(geoDir, 'networks.mmdb');
writeMmdb(GEOIP_DB, [
  { network: '203.0.113.0/24', country: 'NL', asn: 64500 },
  { network: '198.51.100.0/24', country: 'NL', asn: 64501 },
  { network: '192.0.2.0/24', country: 'BR', asn: 64511 },
]);

let redis: RedisServer;
let stack: ProductionStack;
let second: { port: number; close(): Promise<void> };
let prometheus: RunningPrometheus;
let A: Instance;
let B: Instance;

before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({
    npmStart: true,
    env: {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'e2e-prometheus:',
      OPS_TOKEN,
      TRUSTED_PROXY_HOPS: '1',
      SESSION_ANOMALY_POLICY: 'end',
      REFRESH_GRACE_PERIOD: '1',
      SESSION_GEOIP_DB: GEOIP_DB,
      // Rate limits stay at their defaults: the figures are those of a default deployment.
    },
  });
  second = await stack.startSecondInstance();
  A = instanceAt('A', stack.port);
  B = instanceAt('B', second.port);
  await untilReady(stack, B);
  prometheus = await startPrometheus({ targets: [`127.0.0.1:${stack.port}`, `127.0.0.1:${second.port}`], bearerToken: OPS_TOKEN });
});
after(async () => {
  await prometheus?.close();
  await stack?.close();
  await redis?.close();
  rmSync(geoDir, { recursive: true, force: true });
});

/** A sign-in whose callback arrives through the proxy hop from `address` with `userAgent`. */
async function signIn(username: string, address: string, userAgent: string): Promise<string> {
  const browser = new BrowserClient(stack.url);
  const authorizationUrl = await browser.startLogin();
  const callback = await authorizeWithoutBrowser(authorizationUrl, { username, password: `${username}-password` }, `${stack.url}/auth/callback`, { jar: browser.jar });
  const answer = await browser.fetch(callback.pathname + callback.search, { headers: { 'x-forwarded-for': address, 'user-agent': userAgent } });
  assert.equal(answer.status, 303, await answer.text());
  return browser.cookieHeader();
}

/** An API call as the proxy in front forwards it: X-Forwarded-For names the client. */
function from(instance: Instance, path: string, cookie: string, address: string, userAgent: string) {
  return call(stack, instance, path, cookie, { headers: [['x-forwarded-for', address], ['user-agent', userAgent]] });
}

const lastRefreshToken = () => stack.issued.filter((t) => t.kind === 'refresh_token').at(-1)?.value as string;

async function value(expr: string): Promise<number> {
  const result = await prometheus.query(expr);
  return result.length === 0 ? Number.NaN : Number(result[0].value[1]);
}

/** Waits until Prometheus has scraped both instances after the last event. */
async function scrapedTo(expr: string, expected: number): Promise<void> {
  await pollUntil(async () => (await value(expr)) === expected, 15_000, `Prometheus reading ${expr} = ${expected}`);
}

describe('a real Prometheus scraping two npm start instances on Redis', () => {
  let revokedCandidate: string;

  test('Prometheus scrapes both instances with the bearer token from a file; the token is not in its configuration', async () => {
    assert.ok(!prometheus.configText.includes(OPS_TOKEN), 'the token sits in credentials_file, not in prometheus.yml');
    await pollUntil(
      async () => {
        const { activeTargets } = await prometheus.api<{ activeTargets: Array<{ health: string }> }>('targets');
        return activeTargets.length === 2 && activeTargets.every((t) => t.health === 'up');
      },
      15_000,
      'both targets up',
    );
    const without = await rawRequest(A.origin, { path: '/ops/metrics' });
    assert.equal(without.status, 401, 'and /ops/metrics refuses a scrape without it');
  });

  test('one session: a new network alone, a new browser alone — each counted once over both instances, the session lives; then another network and browser at once — 401 session_expired, refused on the other instance, refresh token revoked', async () => {
    let cookie = await signIn('alice', HOME, CHROME_120);
    const update = (answer: { newCookie?: string }) => {
      if (answer.newCookie) cookie = answer.newCookie;
    };

    const first = await from(A, '/api/demo/x', cookie, HOME_OTHER_HOST, CHROME_120);
    assert.equal(first.status, 200, 'the same /24 is the same network');
    update(first);
    revokedCandidate = lastRefreshToken();

    for (const instance of [A, A, B]) {
      const moved = await from(instance, '/api/demo/x', cookie, PHONE, CHROME_120);
      assert.equal(moved.status, 200, `a new network alone is normal (instance ${instance.name})`);
      update(moved);
    }
    const updated = await from(A, '/api/demo/x', cookie, HOME, CHROME_121);
    assert.equal(updated.status, 200, 'a browser update alone is normal');
    update(updated);
    const onB = await from(B, '/auth/session', cookie, PHONE, CHROME_120);
    assert.equal(onB.body.authenticated, true);

    const thief = await from(A, '/api/demo/x', cookie, THIEF, FIREFOX_128);
    assert.equal(thief.status, 401);
    assert.equal(thief.body.error, 'session_expired');
    assert.ok(thief.cleared, 'the cookie is cleared');
    await pollUntil(async () => (await from(B, '/api/demo/x', cookie, HOME, CHROME_120)).status === 401, 1_500, 'the victim\'s own copy refused on instance B');
    assert.equal((await from(B, '/auth/session', cookie, HOME, CHROME_120)).body.authenticated, false);
    assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, revokedCandidate), false, 'its live refresh token is revoked at the provider (RFC 7009)');

    const logs = stack.serverStderr();
    const events = logs.split('\n').filter((line) => line.includes('"event":"session_anomaly"'));
    assert.equal(events.length, 1, 'one session_anomaly event');
    assert.match(events[0], /"level":"warn"/);
    assert.match(events[0], /"signedInNetwork":"AS64500 NL"/, 'the coarse networks, from the offline database');
    assert.match(events[0], /"network":"AS64511 BR"/);
    assert.match(events[0], /Firefox 128/);
    for (const address of [HOME, HOME_OTHER_HOST, PHONE, THIEF]) assert.ok(!logs.includes(address), `a full client address (${address}) in the logs`);
  });

  test('two holders of one session: the spent refresh token presented after the grace window is counted and ends the session', async () => {
    const original = await signIn('bob', HOME, CHROME_120);
    const demo = await from(A, '/api/demo/x', original, HOME, CHROME_120);
    assert.equal(demo.status, 200);
    const reports = await from(A, '/api/reports/x', demo.newCookie as string, HOME, CHROME_120);
    assert.equal(reports.status, 200);
    await sleep(1_300); // past REFRESH_GRACE_PERIOD=1
    const stale = await from(B, '/api/demo/x', original, HOME, CHROME_120);
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error, 'session_expired');
    assert.equal((await from(A, '/api/reports/x', reports.newCookie ?? (demo.newCookie as string), HOME, CHROME_120)).status, 401, 'the newer copy is cut off too');
  });

  test('Prometheus reads back sign-ins, refreshes, proxied calls, origin changes, the anomaly, the reuse and the ends — summed over both instances', async () => {
    // Both instances scraped after every request above was answered: each target's last
    // scrape is newer than now (a count read between the two scrapes would be half of it).
    const answeredBy = Date.now() / 1000;
    await pollUntil(async () => (await value('min(timestamp(up))')) > answeredBy, 15_000, 'both targets scraped after the last request');
    await scrapedTo('sum(cloakroom_refresh_token_reuse_total)', 1);
    await scrapedTo('sum(cloakroom_sessions_ended_total{reason="anomaly"})', 2);
    assert.equal(await value('sum(cloakroom_sessions_started_total)'), 2);
    assert.equal(await value('sum(cloakroom_refresh_total{outcome="ok"})'), 3, 'alice for /api/demo, bob for /api/demo and /api/reports');
    assert.equal(await value('sum(cloakroom_session_anomalies_total{kind="network"})'), 1, 'the new network once, though seen on both instances');
    assert.equal(await value('sum(cloakroom_session_anomalies_total{kind="browser"})'), 1);
    assert.equal(await value('sum(cloakroom_session_anomalies_total{kind="network_and_browser"})'), 1);
    assert.equal(await value('sum(cloakroom_proxy_requests_total{route="/api/demo",status="200"})'), 6);
    assert.ok((await value('sum(cloakroom_proxy_requests_total{route="/api/demo",status="401"})')) >= 3);
    assert.equal(await value('sum(cloakroom_proxy_requests_total{route="/api/reports",status="200"})'), 1);
    assert.ok((await value('sum(cloakroom_proxy_duration_seconds_count)')) >= 9);
    const p99 = await value('histogram_quantile(0.99, sum by (le) (rate(cloakroom_proxy_duration_seconds_bucket[1m])))');
    assert.ok(p99 > 0 && p99 < 10, `p99 of the proxy ${p99}`);
    assert.equal(await value('sum(up{job="cloakroom"})'), 2);
    assert.ok((await value('sum(process_resident_memory_bytes{job="cloakroom"})')) > 0, 'Node\'s process metrics');
  });

  test('one scrape of instance A holds both the sign-in counter and the proxy counter (one registry per process)', async () => {
    const scrape = await rawRequest(A.origin, { path: '/ops/metrics', headers: [['authorization', `Bearer ${OPS_TOKEN}`]] });
    const text = scrape.body.toString('utf8');
    assert.match(text, /^cloakroom_sessions_started_total 2$/m);
    assert.match(text, /^cloakroom_proxy_requests_total\{route="\/api\/demo",status="200"\} [1-9]/m);
    assert.equal(text.match(/^# TYPE cloakroom_sessions_started_total /gm)?.length, 1, 'registered once');
  });

  test('the alerts for refresh-token reuse and the anomaly fire in Prometheus; every rule is healthy', async () => {
    await pollUntil(
      async () => {
        const { alerts } = await prometheus.api<{ alerts: Array<{ labels: { alertname: string }; state: string }> }>('alerts');
        const firing = new Set(alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname));
        return firing.has('CloakroomRefreshTokenReuse') && firing.has('CloakroomSessionAnomaly');
      },
      15_000,
      'CloakroomRefreshTokenReuse and CloakroomSessionAnomaly firing',
    );
    const { groups } = await prometheus.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>('rules');
    const rules = groups.flatMap((g) => g.rules);
    assert.equal(rules.length, 6);
    for (const rule of rules) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
    const { alerts } = await prometheus.api<{ alerts: Array<{ labels: { alertname: string }; state: string }> }>('alerts');
    const quiet = ['CloakroomStoreErrors', 'CloakroomProxy5xxRate', 'CloakroomRefreshFailures'];
    for (const name of quiet) assert.ok(!alerts.some((a) => a.labels.alertname === name && a.state === 'firing'), `${name} fires on a healthy broker`);
  });

  test("every dashboard panel's PromQL evaluates against this Prometheus, on metric names it holds", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }> };
    const names = new Set(await prometheus.api<string[]>('label/__name__/values'));
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    assert.ok(exprs.length >= 12, 'the dashboard has its panels');
    const covered = new Set<string>();
    for (const { title, expr } of exprs) {
      // Grafana's variables, as Grafana substitutes them.
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.+');
      await prometheus.query(promql).catch((error: Error) => assert.fail(`${title}: ${error.message}`));
      for (const [name] of promql.matchAll(/\b(?:cloakroom|process|nodejs)_[a-z0-9_]+|\bup\b/g)) {
        assert.ok(names.has(name), `${title}: ${name} is not a metric the broker exports`);
        covered.add(name.replace(/_bucket$/, ''));
      }
    }
    for (const name of ['cloakroom_refresh_token_reuse_total', 'cloakroom_session_anomalies_total', 'cloakroom_refresh_total', 'cloakroom_store_errors_total', 'cloakroom_proxy_requests_total', 'cloakroom_proxy_duration_seconds']) {
      assert.ok(covered.has(name), `no panel shows ${name}`);
    }
  });

  test('nothing Prometheus holds names a token, a cookie, a secret, a user or a full client address', async () => {
    const series = await prometheus.api<Array<Record<string, string>>>(`series?match[]=${encodeURIComponent('{job="cloakroom"}')}`);
    assert.ok(series.length > 20);
    const text = JSON.stringify(series);
    const secrets = [OPS_TOKEN, stack.clientSecret, stack.sessionSecret, ...stack.issuedTokens, HOME, HOME_OTHER_HOST, PHONE, THIEF, 'alice', 'bob', '203.0.113', '198.51.100', '192.0.2.'];
    for (const secret of secrets) assert.ok(!text.includes(secret), `a label value holds ${secret.slice(0, 12)}…`);
    const scrape = (await rawRequest(B.origin, { path: '/ops/metrics', headers: [['authorization', `Bearer ${OPS_TOKEN}`]] })).body.toString('utf8');
    for (const secret of secrets) assert.ok(!scrape.includes(secret), `the scrape holds ${secret.slice(0, 12)}…`);
    const labelNames = new Set(series.flatMap((s) => Object.keys(s)));
    for (const name of labelNames) assert.ok(!/session|user|sub|token|ip|address/i.test(name) || name === '__name__', `label ${name}`);
  });
});
