/**
 * The session list and the ways to end sessions, through the production server
 * (`npm start`), two instances sharing a real redis-server, and the real oidc-provider:
 * what one instance ends, the other refuses within a second (CONTRACT.md, "Many
 * instances"), in both SESSION_STORAGE modes. `/ops/` endpoints are called on the second
 * instance by address (no Host check for them) with the bearer OPS_TOKEN.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, CLIENT_ID, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { isActiveAtProvider, lastSignIn, watchGrants, type Grant, type ListedSession } from '../helpers/sessions.ts';
import { BrowserClient } from '../helpers/stack.ts';

const OPS_TOKEN = randomBytes(32).toString('base64url');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.close();
});

interface Instance {
  stack: ProductionStack;
  second: { port: number; close(): Promise<void> };
  grants: Grant[];
}

async function startInstances(mode: 'cookie' | 'server'): Promise<Instance> {
  const stack = await startProductionStack({
    npmStart: true,
    env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `e2e-sessions-${mode}:`, SESSION_STORAGE: mode, OPS_TOKEN },
  });
  const second = await stack.startSecondInstance();
  const deadline = Date.now() + 10_000;
  while ((await rawRequest(`http://127.0.0.1:${second.port}`, { path: '/readyz' })).status !== 200) {
    assert.ok(Date.now() < deadline, 'the second instance never became ready');
    await sleep(50);
  }
  return { stack, second, grants: watchGrants(stack.idp.provider) };
}

/** A browser's request on the second instance, addressed as the public origin (what a balancer forwards). */
async function onSecond(instance: Instance, path: string, cookie: string): Promise<{ status: number; body: string }> {
  const answer = await rawRequest(`http://127.0.0.1:${instance.second.port}`, {
    path,
    headers: [['host', new URL(instance.stack.url).host], ['cookie', cookie], ['x-csrf', '1'], ['sec-fetch-site', 'same-origin']],
  });
  return { status: answer.status, body: answer.body.toString('utf8') };
}

/** Waits up to a second for the copy of a cookie to be refused on the second instance: API 401 and authenticated:false. */
async function endedOnSecond(instance: Instance, cookie: string, what: string): Promise<void> {
  const within = Date.now() + 1_000;
  for (;;) {
    const api = await onSecond(instance, '/api/demo/x', cookie);
    const session = await onSecond(instance, '/auth/session', cookie);
    if (api.status === 401 && JSON.parse(session.body).authenticated === false) return;
    if (Date.now() > within) assert.fail(`${what}: the second instance still serves the session a second later (api ${api.status}, ${session.body})`);
    await sleep(50);
  }
}

async function liveOnSecond(instance: Instance, cookie: string, what: string): Promise<void> {
  assert.equal((await onSecond(instance, '/api/demo/x', cookie)).status, 200, what);
}

function opsOnSecond(instance: Instance, method: string, path: string, token: string | undefined, body?: unknown) {
  const headers: Array<[string, string]> = [['host', `127.0.0.1:${instance.second.port}`]];
  if (token !== undefined) headers.push(['authorization', `Bearer ${token}`]);
  if (body !== undefined) headers.push(['content-type', 'application/json']);
  return rawRequest(`http://127.0.0.1:${instance.second.port}`, { method, path, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function signIn(instance: Instance, username: string): Promise<{ browser: BrowserClient; sid: string; refreshToken: () => string }> {
  const browser = new BrowserClient(instance.stack.url);
  assert.equal((await browser.signIn(username)).status, 303);
  const signInGrant = lastSignIn(instance.grants);
  // The API call needs a token for its resource: a refresh, whose rotated token only the record holds from then on.
  assert.equal((await browser.api('/api/demo/x')).status, 200);
  const refreshed = instance.grants.at(-1) as Grant;
  assert.equal(refreshed.grantType, 'refresh_token', 'the first API call refreshed for its resource');
  return { browser, sid: signInGrant.sid as string, refreshToken: () => refreshed.refreshToken as string };
}

for (const mode of ['cookie', 'server'] as const) {
  describe(`npm start, two instances on Redis, SESSION_STORAGE=${mode}`, () => {
    let instance: Instance;
    before(async () => {
      instance = await startInstances(mode);
    });
    after(async () => {
      await instance?.stack.close();
    });

    test('alice lists her two sessions and signs the other out; it is refused on the second instance within a second and its refresh token is revoked at the provider; bob is untouchable', async () => {
      const { stack } = instance;
      const alice1 = await signIn(instance, 'alice');
      const alice2 = await signIn(instance, 'alice');
      const bob = await signIn(instance, 'bob');

      const listing = await alice2.browser.api('/auth/sessions');
      assert.equal(listing.status, 200);
      assert.equal(listing.headers.get('cache-control'), 'no-store');
      const text = await listing.text();
      const sessions = (JSON.parse(text) as { sessions: ListedSession[] }).sessions;
      assert.equal(sessions.length, 2);
      assert.deepEqual(sessions.map((s) => s.current), [true, false]);
      for (const token of stack.issuedTokens) assert.ok(!text.includes(token), 'a token issued by the provider is in the list');
      for (const part of [alice1, alice2].flatMap((a) => a.browser.cookieHeader().split('; '))) assert.ok(!text.includes(part.slice(part.indexOf('=') + 1)), 'a cookie value in the list');

      const noCsrf = await alice2.browser.fetch('/auth/sessions', { headers: { 'sec-fetch-site': 'same-origin' } });
      assert.equal(noCsrf.status, 403);
      const badBody = await alice2.browser.api('/auth/sessions/revoke', { method: 'POST', headers: { origin: stack.url }, body: '{"others":"yes"}' });
      assert.equal(badBody.status, 400);

      const bobHandle = ((await (await bob.browser.api('/auth/sessions')).json()) as { sessions: ListedSession[] }).sessions[0].id;
      const foreign = await alice2.browser.api('/auth/sessions/revoke', { method: 'POST', headers: { origin: stack.url }, body: JSON.stringify({ id: bobHandle }) });
      assert.deepEqual(await foreign.json(), { revoked: 0 });

      const copy = alice1.browser.cookieHeader();
      await liveOnSecond(instance, copy, 'alice\'s other session before the revoke');
      const revoke = await alice2.browser.api('/auth/sessions/revoke', { method: 'POST', headers: { origin: stack.url }, body: JSON.stringify({ others: true }) });
      assert.equal(revoke.status, 200);
      assert.deepEqual(await revoke.json(), { revoked: 1 });
      await endedOnSecond(instance, copy, 'alice\'s other session');
      assert.equal((await alice1.browser.api('/api/demo/x')).status, 401, 'and on the first instance');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, alice1.refreshToken()), false, 'its live (rotated) refresh token is revoked');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, alice2.refreshToken()), true);
      await liveOnSecond(instance, alice2.browser.cookieHeader(), 'alice\'s current session');
      await liveOnSecond(instance, bob.browser.cookieHeader(), 'bob\'s session');
      const logs = stack.serverStderr();
      for (const token of stack.issuedTokens) assert.ok(!logs.includes(token), 'a token in the logs');
      const events = logs.split('\n').filter((line) => /"event":"(session_revoked|sessions_revoked|sessions_revoke_requested)"/.test(line));
      assert.ok(events.length >= 2, 'the revoke is logged');
      for (const line of events) {
        assert.ok(!/user-alice|user-bob/.test(line), `a subject in a log line: ${line}`);
        for (const s of sessions) assert.ok(!line.includes(s.id), 'a list handle in a log line');
      }
      assert.ok(events.some((line) => line.includes('"security":true') && /"session":"[\w-]{16}"/.test(line)), 'a security event with the log handle');
    });

    test('/ops/ on the second instance by address: 401 without or with a wrong token; sessions by sub; revoke by sid, by sub, by createdBefore, each seen on the other instance within a second', async () => {
      const { stack } = instance;
      for (const token of [undefined, 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8']) {
        const answer = await opsOnSecond(instance, 'GET', '/ops/sessions?sub=user-bob', token);
        assert.equal(answer.status, 401);
        assert.match(String(answer.headers['www-authenticate']), /^Bearer/);
        assert.equal(answer.headers['cache-control'], 'no-store');
      }
      const bob1 = await signIn(instance, 'bob');
      const bob2 = await signIn(instance, 'bob');
      const carol = await signIn(instance, 'alice');

      const listed = await opsOnSecond(instance, 'GET', '/ops/sessions?sub=user-bob', OPS_TOKEN);
      assert.equal(listed.status, 200);
      const sessions = (JSON.parse(listed.body.toString('utf8')) as { sessions: ListedSession[] }).sessions;
      assert.ok(sessions.length >= 2);
      assert.ok(sessions.every((s) => !('current' in s)));

      const bySid = await opsOnSecond(instance, 'POST', '/ops/revoke', OPS_TOKEN, { sid: bob1.sid });
      assert.equal(bySid.status, 200);
      assert.deepEqual(JSON.parse(bySid.body.toString('utf8')), { ok: true });
      await endedOnSecond(instance, bob1.browser.cookieHeader(), 'revoke by sid');
      assert.equal((await bob1.browser.api('/api/demo/x')).status, 401, 'by sid, on the first instance too');
      assert.equal((await bob2.browser.api('/api/demo/x')).status, 200, 'another provider session of bob lives');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, bob1.refreshToken()), false);

      const bySub = await opsOnSecond(instance, 'POST', '/ops/revoke', OPS_TOKEN, { sub: 'user-bob' });
      assert.equal(bySub.status, 200);
      await endedOnSecond(instance, bob2.browser.cookieHeader(), 'revoke by sub');
      assert.equal(await isActiveAtProvider(stack.idp.issuer, CLIENT_ID, stack.clientSecret, bob2.refreshToken()), false);
      assert.equal((await carol.browser.api('/api/demo/x')).status, 200, 'another user lives');

      const cutoff = Math.ceil(Date.now() / 1000);
      while (Date.now() < cutoff * 1000 + 5) await sleep(20);
      const late = await signIn(instance, 'alice');
      const byTime = await opsOnSecond(instance, 'POST', '/ops/revoke', OPS_TOKEN, { createdBefore: cutoff });
      assert.equal(byTime.status, 200);
      await endedOnSecond(instance, carol.browser.cookieHeader(), 'revoke by createdBefore');
      assert.equal((await late.browser.api('/api/demo/x')).status, 200, 'a session signed in after createdBefore lives');
      await liveOnSecond(instance, late.browser.cookieHeader(), 'the later session on the second instance');
    });

    test('GET /ops/metrics on the second instance by address: 401 without the token; with it Prometheus text that promtool accepts, counting the revocations, naming no user, session or token', async () => {
      assert.equal((await opsOnSecond(instance, 'GET', '/ops/metrics', undefined)).status, 401);
      const answer = await opsOnSecond(instance, 'GET', '/ops/metrics', OPS_TOKEN);
      assert.equal(answer.status, 200);
      assert.match(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      assert.equal(answer.headers['cache-control'], 'no-store');
      const text = answer.body.toString('utf8');
      assert.match(text, /^cloakroom_sessions_ended_total\{reason="revoked"\} [1-9]/m, 'the ops revocations of the test before, served by this instance');
      assert.match(text, /^process_resident_memory_bytes /m, "Node's process metrics beside the broker's");
      // The earlier tests' API calls on this instance, labelled by the configured route only.
      assert.match(text, /^cloakroom_proxy_requests_total\{route="\/api\/demo",status="200"\} [1-9]/m);
      assert.match(text, /^cloakroom_proxy_requests_total\{route="\/api\/demo",status="401"\} [1-9]/m, 'the refused copies');
      assert.match(text, /^cloakroom_proxy_duration_seconds_count\{route="\/api\/demo"\} [1-9]/m);
      assert.ok(!/route="\/api\/demo\/x"/.test(text), 'a request path as a label');
      assert.ok(!/user-alice|user-bob/.test(text), 'a subject in the metrics');
      for (const value of instance.stack.issuedTokens) assert.ok(!text.includes(value), 'a token in the metrics');
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(lint.error, undefined, 'promtool runs (Debian prometheus package)');
      const complaints = `${lint.stdout}${lint.stderr}`;
      // prom-client's own nodejs_active_*_total gauges draw promtool's naming lint; the text
      // must parse, and no metric of the broker's may draw a complaint.
      assert.doesNotMatch(complaints, /parsing error|error while linting/i, complaints);
      assert.doesNotMatch(complaints, /cloakroom_/, complaints);
    });
  });
}

describe('npm start without OPS_TOKEN', () => {
  let stack: ProductionStack;
  before(async () => {
    stack = await startProductionStack({ npmStart: true });
  });
  after(async () => {
    await stack?.close();
  });
  test('every /ops/ path answers 404 not_found, with or without a token', async () => {
    for (const [method, path] of [['POST', '/ops/revoke'], ['GET', '/ops/sessions?sub=user-alice'], ['GET', '/ops/revoke'], ['GET', '/ops/metrics'], ['GET', '/ops/anything']] as const) {
      for (const token of [undefined, OPS_TOKEN]) {
        const headers: Array<[string, string]> = [['host', `127.0.0.1:${stack.port}`]];
        if (token) headers.push(['authorization', `Bearer ${token}`]);
        const answer = await rawRequest(`http://127.0.0.1:${stack.port}`, { method, path, headers, body: method === 'POST' ? '{"sub":"user-alice"}' : undefined });
        assert.equal(answer.status, 404, `${method} ${path}`);
        assert.deepEqual(JSON.parse(answer.body.toString('utf8')), { error: 'not_found' }, `${method} ${path}`);
        assert.equal(answer.headers['cache-control'], 'no-store');
      }
    }
  });
});
