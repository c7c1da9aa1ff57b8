/**
 * The session's refresh record (lib/tokens/record.ts) as the store sees it: the hot path
 * never reads it, a session that has not refreshed has none, and a refresh leaves one
 * sealed entry (no token in the clear) and no lock behind. Real rotating provider; the
 * broker instance runs over a store client that counts what it is asked.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KeyValueStore } from '../../../lib/stores/store.ts';
import { answerOf, sleep } from '../../helpers/calls.ts';
import { unsealSession } from '../../helpers/core.ts';
import { brokerInstance, StoreClient } from '../../helpers/instances.ts';
import { startStack, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: { rotateRefreshTokens: true, accessTokenTtl: 4 },
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url }]) },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

/** Every key the broker asked the store to read, by kind (`refresh`, `ended`, …). */
class CountingStore extends StoreClient {
  readonly reads: string[] = [];
  constructor(shared: KeyValueStore) {
    super(shared);
  }
  override get(key: string) {
    this.reads.push(key.slice(0, key.indexOf(':')));
    return super.get(key);
  }
  override getMany(keys: readonly string[]) {
    for (const key of keys) this.reads.push(key.slice(0, key.indexOf(':')));
    return super.getMany(keys);
  }
}

test('a fresh access token is used without reading the refresh record; a refresh leaves one sealed entry and no lock', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const cookie = browser.cookieHeader();
  const counting = new CountingStore(stack.store);
  const instance = brokerInstance(counting);
  // Refresh records and their locks only: the first call may also leave an origin-change
  // mark (lib/security/session-anomaly.ts) when the test client's address differs from sign-in's.
  const before = refreshEntries(stack.store);

  const fresh = await answerOf(await instance.api('/api/up/fresh', cookie));
  assert.equal(fresh.status, 200);
  assert.ok(!counting.reads.includes('refresh'), `the hot path read only ${[...new Set(counting.reads)].join(', ')}`);
  assert.equal(refreshEntries(stack.store), before, 'a session that has not refreshed has no record');

  await sleep(2_300);
  const refreshed = await answerOf(await instance.api('/api/up/due', cookie));
  assert.equal(refreshed.status, 200);
  assert.ok(counting.reads.includes('refresh'), 'a due token reads the record');
  assert.equal(refreshEntries(stack.store), before + 1, 'one record, the lock released');

  const session = await unsealSession(refreshed.newCookie as string);
  const secrets = [session?.refreshToken, ...Object.values(session?.tokens ?? {}).map((t) => t.value)].filter((v): v is string => !!v);
  assert.ok(secrets.length >= 2);
  for (const value of storedValues(stack.store)) for (const secret of secrets) assert.ok(!value.includes(secret), 'the store holds no token in the clear');
});

/** How many refresh records and refresh locks the memory store holds (keys are `kind:mac`). */
function refreshEntries(store: KeyValueStore): number {
  const entries = (store as unknown as { entries: Map<string, unknown> }).entries;
  return [...entries.keys()].filter((key) => key.startsWith('refresh:') || key.startsWith('refresh-lock:')).length;
}

/** Every value in the memory store (test-only access to its entries). */
function storedValues(store: KeyValueStore): string[] {
  const entries = (store as unknown as { entries: Map<string, { value: string }> }).entries;
  return [...entries.values()].map((e) => e.value);
}
