/**
 * What broke (M8): nothing bounded how many upstream exchanges one session, or one
 * route, held open at once. One signed-in user (or, on `auth: none`, anyone) could open
 * event streams or slow downloads until the API's connections were gone. Now each route
 * admits at most `maxConcurrent` exchanges (default 100) and `maxConcurrentPerSession`
 * per session (default 64); beyond, 429 `rate_limited` with `Retry-After`, and the API
 * never sees the request.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { holdAnswer, type HeldAnswer } from '../helpers/held-answer.ts';
import { startStack, type BrowserClient, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const EVENT_STREAM = '/sse?count=100000&interval=300';
const DEFAULT_PER_SESSION = 64;

let stack: Stack;
let up: TestUpstream;
let alice: BrowserClient;
let bob: BrowserClient;

const routes = (extra: object[] = []) =>
  JSON.stringify([{ path: '/api/live', upstream: `${up.url}/v1`, auth: 'required', timeoutMs: 5_000 }, ...extra]);

before(async () => {
  up = await startUpstream();
  stack = await startStack({ env: { BFF_ROUTES: routes() } });
  alice = stack.newBrowser();
  bob = stack.newBrowser();
  assert.equal((await alice.signIn('alice')).status, 303);
  assert.equal((await bob.signIn('bob')).status, 303);
});

after(async () => {
  await stack?.close();
  await up?.close();
});

function stream(client: BrowserClient | undefined, path = `/api/live${EVENT_STREAM}`): Promise<HeldAnswer> {
  return holdAnswer(stack.broker.url, path, { accept: 'text/event-stream', ...(client ? { cookie: client.cookieHeader() } : {}) });
}

async function assertRateLimited(response: Response): Promise<void> {
  assert.equal(response.status, 429);
  assert.equal(response.headers.get('retry-after'), '1');
  assert.equal(response.headers.get('cache-control'), 'no-store');
  assert.equal(((await response.json()) as { error: string }).error, 'rate_limited');
}

test(`one session holds at most ${DEFAULT_PER_SESSION} exchanges on a route; another session is unaffected`, async () => {
  const held: HeldAnswer[] = [];
  try {
    for (let i = 0; i < DEFAULT_PER_SESSION; i++) held.push(await stream(alice));
    assert.ok(held.every((s) => s.status === 200));
    up.reset();
    await assertRateLimited(await alice.api(`/api/live/echo`));
    assert.equal(up.records.length, 0, 'the refused call never reached the API');

    const other = await stream(bob);
    held.push(other);
    assert.equal(other.status, 200);

    // A stream that ends gives its place back.
    held.shift()?.close();
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      const response = await alice.api('/api/live/echo');
      status = response.status;
      await response.body?.cancel();
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(status, 200, 'the released place is taken again');
  } finally {
    for (const s of held) s.close();
  }
});

test('a route holds at most maxConcurrent exchanges, all users together', async () => {
  stack.configure({ BFF_ROUTES: routes([{ path: '/api/few', upstream: `${up.url}/v1`, auth: 'none', maxConcurrent: 3 }]) });
  const held: HeldAnswer[] = [];
  try {
    for (let i = 0; i < 3; i++) held.push(await stream(undefined, `/api/few${EVENT_STREAM}`));
    assert.ok(held.every((s) => s.status === 200));
    await assertRateLimited(await stack.newBrowser().api('/api/few/echo'));
  } finally {
    for (const s of held) s.close();
    stack.configure({ BFF_ROUTES: routes() });
  }
});
