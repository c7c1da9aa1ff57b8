/**
 * What broke (AUDIT H2): every rotation left a `rt:used:<hash>` entry for 7 days (plus a
 * successor for the grace window) in a memory store with no cap, swept by a walk of the
 * whole map: store size followed refresh volume, not live sessions, until the heap gave
 * out. Now a session that refreshed has exactly one record, whatever the number of
 * refreshes, with a TTL that follows the session's remaining lifetime; the memory store
 * has a hard cap with LRU eviction and sweeps a bounded batch per tick.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metrics } from '../../lib/ops/metrics.ts';
import { MemoryStore } from '../../lib/stores/memory.ts';
import { callWith, sleep } from '../helpers/calls.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

describe('refreshes against the rotating provider', () => {
  let stack: Stack;
  let up: TestUpstream;

  before(async () => {
    up = await startUpstream();
    stack = await startStack({
      // 1 s access tokens are due every half second: many rotations in a short test.
      idp: { rotateRefreshTokens: true, accessTokenTtl: 1 },
      env: { BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url }]) },
    });
  });

  after(async () => {
    await stack?.close();
    await up?.close();
  });

  test('store entries equal the number of live sessions after many rotations', async () => {
    const SESSIONS = 3;
    const ROTATIONS = 6;
    const cookies: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const browser = stack.newBrowser();
      assert.equal((await browser.signIn(i % 2 ? 'bob' : 'alice')).status, 303);
      cookies.push(browser.cookieHeader());
    }
    stack.idp.resetStats();
    // What sign-in keeps (the session index: one value per user, one sid pointer per session).
    const afterSignIn = stack.store.size;
    for (let round = 0; round < ROTATIONS; round++) {
      await sleep(600);
      const answers = await Promise.all(cookies.map((cookie) => callWith(stack.broker.url, '/api/up/echo', cookie)));
      answers.forEach((answer, i) => {
        assert.equal(answer.status, 200);
        cookies[i] = answer.newCookie ?? cookies[i];
      });
    }
    assert.equal(stack.idp.stats.refreshGrants, SESSIONS * ROTATIONS, 'every round rotated every session');
    assert.equal(stack.store.size - afterSignIn, SESSIONS, 'refreshes add one entry per live session, not one per rotation');
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });
});

describe('MemoryStore bounds', () => {
  test('a hard cap evicts the least recently used entry', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    try {
      await store.set('keep', 'v', 3600);
      for (let i = 0; i < 1_000; i++) {
        await store.set(`k${i}`, 'v', 3600);
        if (i % 50 === 0) assert.equal(await store.get('keep'), 'v', 'a recently read entry survives');
      }
      assert.equal(store.size, 100);
      assert.equal(await store.get('k0'), undefined, 'the least recently used went first');
      assert.equal(await store.get('k999'), 'v');
      assert.equal((await metrics.storeEntries.get()).values[0]?.value, 100, 'cloakroom_store_entries follows it');
    } finally {
      store.close();
    }
  });

  test('the sweep drops expired entries a bounded batch at a time', async () => {
    const store = new MemoryStore({ sweepBatch: 100, sweepIntervalMs: 3_600_000 });
    try {
      for (let i = 0; i < 1_000; i++) await store.set(`gone${i}`, 'v', 0.001);
      await store.set('live', 'v', 3600);
      await sleep(5);
      store.sweep();
      assert.equal(store.size, 901, 'one tick inspects one batch, not the whole map');
      for (let i = 0; i < 10; i++) store.sweep();
      assert.equal(store.size, 1, 'later ticks finish the job');
      assert.equal(await store.get('live'), 'v');
    } finally {
      store.close();
    }
  });
});
