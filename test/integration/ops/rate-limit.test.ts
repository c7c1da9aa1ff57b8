/**
 * Rate limits against the real provider and a real upstream (CONTRACT.md: RATE_LIMIT_API,
 * RATE_LIMIT_AUTH, TRUSTED_PROXY_HOPS, `429 rate_limited` with `Retry-After`, metric
 * `cloakroom_rate_limited_total{scope}`): `/api/` per session, without a session per
 * client address (so rotating junk cookies buys nothing), sign-in per client address
 * with IPv6 by /64, and `0` turning each off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metrics } from '../../../lib/ops/metrics.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

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

function configure(env: Record<string, string>): void {
  stack.configure({
    BFF_ROUTES: JSON.stringify([
      { path: '/api/up', upstream: up.url, auth: 'required' },
      { path: '/api/open', upstream: up.url, auth: 'none' },
    ]),
    ...env,
  });
  up.reset();
}

async function signedIn(username = 'alice'): Promise<BrowserClient> {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn(username)).status, 303);
  return browser;
}

async function rateLimitedCount(scope: 'api' | 'auth'): Promise<number> {
  return (await metrics.rateLimited.get()).values.find((v) => v.labels.scope === scope)?.value ?? 0;
}

async function statuses(count: number, call: (i: number) => Promise<Response>): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await call(i);
    await response.body?.cancel();
    result.push(response.status);
  }
  return result;
}

describe('RATE_LIMIT_API: per session on /api/', () => {
  test('a session over its budget gets 429 with Retry-After, and the refused calls never reach the API', async () => {
    configure({ RATE_LIMIT_API: '4' });
    const alice = await signedIn();
    assert.deepEqual(await statuses(4, () => alice.api('/api/up/x')), [200, 200, 200, 200]);
    const before = await rateLimitedCount('api');
    const refused = await alice.api('/api/up/x');
    assert.equal(refused.status, 429);
    assert.deepEqual(await refused.json(), { error: 'rate_limited' });
    assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1 && Number(refused.headers.get('retry-after')) <= 60);
    assert.equal(refused.headers.get('cache-control'), 'no-store');
    assert.equal(refused.headers.getSetCookie().length, 0, 'the session cookie is neither rewritten nor cleared');
    assert.equal(up.records.length, 4, 'the API saw only the calls within the budget');
    assert.equal(await rateLimitedCount('api'), before + 1);
    // Still signed in: a refusal is not a logout.
    const session = await alice.api('/auth/session');
    assert.equal(((await session.json()) as { authenticated: boolean }).authenticated, true);
  });

  test('two sessions do not share a budget, even from the same address', async () => {
    configure({ RATE_LIMIT_API: '3' });
    const alice = await signedIn('alice');
    const bob = await signedIn('bob');
    const aliceAgain = await signedIn('alice');
    assert.deepEqual(await statuses(4, () => alice.api('/api/up/a')), [200, 200, 200, 429]);
    assert.deepEqual(await statuses(4, () => bob.api('/api/up/b')), [200, 200, 200, 429]);
    assert.deepEqual(await statuses(4, () => aliceAgain.api('/api/up/c')), [200, 200, 200, 429], 'a second session of the same user has its own');
  });

  test('without a valid session the address is the key: rotating junk cookies gets no fresh budget', async () => {
    configure({ RATE_LIMIT_API: '3' });
    const anonymous = stack.newBrowser();
    const junk = (i: number) => anonymous.api('/api/up/x', { headers: { cookie: `cloakroom=junk-${i}-${'x'.repeat(40)}` } });
    assert.deepEqual(await statuses(5, junk), [401, 401, 401, 429, 429]);
    // auth "none" routes count the same way, against the same address budget.
    assert.deepEqual(await statuses(1, () => anonymous.api('/api/open/y')), [429]);
    assert.equal(up.records.length, 0);
  });

  test('anonymous calls behind a trusted proxy count per client address', async () => {
    configure({ RATE_LIMIT_API: '2', TRUSTED_PROXY_HOPS: '1' });
    const from = (address: string) => () => stack.newBrowser().api('/api/open/z', { headers: { 'x-forwarded-for': address } });
    assert.deepEqual(await statuses(3, from('198.51.100.1')), [200, 200, 429]);
    assert.deepEqual(await statuses(3, from('198.51.100.2')), [200, 200, 429]);
  });

  test('RATE_LIMIT_API=0 turns the limit off', async () => {
    configure({ RATE_LIMIT_API: '0' });
    const alice = await signedIn();
    // More than the default of 600 a minute, in parallel batches.
    const seen: number[] = [];
    for (let batch = 0; batch < 31; batch++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => alice.api('/api/up/many')));
      for (const answer of answers) {
        await answer.body?.cancel();
        seen.push(answer.status);
      }
    }
    assert.equal(seen.length, 620);
    assert.deepEqual([...new Set(seen)], [200]);
  });
});

describe('RATE_LIMIT_AUTH: per client address on sign-in', () => {
  test('IPv6 clients count by /64: rotating addresses inside one prefix gets no fresh budget', async () => {
    configure({ RATE_LIMIT_AUTH: '2', TRUSTED_PROXY_HOPS: '1' });
    const login = (address: string) => () => stack.newBrowser().fetch('/auth/login', { headers: { 'x-forwarded-for': address } });
    assert.deepEqual(await statuses(1, login('2001:db8:aa:bb::1')), [302]);
    assert.deepEqual(await statuses(1, login('2001:db8:aa:bb::2')), [302]);
    assert.deepEqual(await statuses(1, login('2001:db8:aa:bb:ffff:1:2:3')), [429]);
    assert.deepEqual(await statuses(1, login('2001:db8:aa:cc::1')), [302], 'the next /64 is another client');
  });

  test('without a trusted proxy, X-Forwarded-For does not choose the budget', async () => {
    configure({ RATE_LIMIT_AUTH: '2', TRUSTED_PROXY_HOPS: '0' });
    const login = (address: string) => () => stack.newBrowser().fetch('/auth/login', { headers: { 'x-forwarded-for': address } });
    assert.deepEqual(await statuses(1, login('1.2.3.4')), [302]);
    assert.deepEqual(await statuses(1, login('5.6.7.8')), [302]);
    assert.deepEqual(await statuses(1, login('9.9.9.9')), [429]);
  });

  test('RATE_LIMIT_AUTH=0 turns the limit off', async () => {
    configure({ RATE_LIMIT_AUTH: '0' });
    const client = stack.newBrowser();
    // More than the default of 60 a minute.
    assert.deepEqual([...new Set(await statuses(65, () => client.fetch('/auth/login')))], [302]);
  });

  test('the sign-in budget is apart from the API budget', async () => {
    configure({ RATE_LIMIT_AUTH: '100', RATE_LIMIT_API: '1' });
    const alice = await signedIn();
    assert.deepEqual(await statuses(2, () => alice.api('/api/up/x')), [200, 429]);
    assert.deepEqual(await statuses(1, () => stack.newBrowser().fetch('/auth/login')), [302]);
  });
});
