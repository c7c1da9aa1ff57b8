/**
 * The RedisStore when Redis is not there: a stalled server (SIGSTOP: the connection stays
 * open, nothing answers), a killed one, and one that was down when the broker started.
 * Every operation must reject with `StoreUnavailableError` — never hang, never answer
 * "absent" — promptly (the bound below is generous: the store's own deadline is 300 ms),
 * count in cloakroom_store_errors_total, and work again once Redis is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metrics } from '../../../lib/ops/metrics.ts';
import { RedisStore } from '../../../lib/stores/redis.ts';
import { StoreUnavailableError } from '../../../lib/stores/store.ts';
import { startRedisRelay } from '../../helpers/redis-partition.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';

/** Far above the store's deadline, far below "a stalled Redis holds the request" (the 5 s default, or forever). */
const GENEROUS_BOUND_MS = 3_000;

let redis: RedisServer;
let store: RedisStore;

before(async () => {
  redis = await startRedis();
  store = new RedisStore({ url: redis.url, keyPrefix: 'outage-test:' });
});
after(async () => {
  redis?.resume();
  await store?.close();
  await redis?.close();
});

async function storeErrors(): Promise<number> {
  return (await metrics.storeErrors.get()).values[0]?.value ?? 0;
}

/** The operation's outcome: its error (or 'resolved'), and whether it settled within the bound. */
async function settle(operation: () => Promise<unknown>): Promise<{ error: unknown; withinBound: boolean }> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'bound'>((resolve) => {
    timer = setTimeout(() => resolve('bound'), GENEROUS_BOUND_MS);
  });
  const outcome = await Promise.race([operation().then(() => ({ error: 'resolved' as unknown }), (error: unknown) => ({ error })), bound]);
  clearTimeout(timer);
  return outcome === 'bound' ? { error: undefined, withinBound: false } : { ...outcome, withinBound: true };
}

const EVERY_OPERATION: Array<[string, (s: RedisStore) => Promise<unknown>]> = [
  ['get', (s) => s.get('k')],
  ['getMany', (s) => s.getMany(['k', 'l'])],
  ['set', (s) => s.set('k', 'v', 60)],
  ['setIfAbsent', (s) => s.setIfAbsent('lock', 'me', 60)],
  ['compareAndSet', (s) => s.compareAndSet('k', 'v', 'w', 60)],
  ['extendIfEquals', (s) => s.extendIfEquals('lock', 'me', 60)],
  ['deleteIfEquals', (s) => s.deleteIfEquals('lock', 'me')],
  ['delete', (s) => s.delete('k')],
];

async function assertEveryOperationRefused(s: RedisStore, when: string): Promise<void> {
  for (const [name, operation] of EVERY_OPERATION) {
    const before = await storeErrors();
    const { error, withinBound } = await settle(() => operation(s));
    assert.ok(withinBound, `${when}: ${name} did not settle within ${GENEROUS_BOUND_MS} ms`);
    assert.ok(error instanceof StoreUnavailableError, `${when}: ${name} gave ${error instanceof Error ? error.name : String(error)}, not StoreUnavailableError`);
    assert.equal(await storeErrors(), before + 1, `${when}: ${name} not counted in cloakroom_store_errors_total`);
  }
}

/** Redis is back: the store answers again (retried for a moment while it reconnects). */
async function eventuallyWorks(s: RedisStore, key: string): Promise<void> {
  const deadline = Date.now() + GENEROUS_BOUND_MS;
  for (;;) {
    try {
      await s.set(key, 'back', 60);
      assert.equal(await s.get(key), 'back');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('RedisStore outages', () => {
  test('a stalled Redis (SIGSTOP): every operation rejects with StoreUnavailableError promptly; SIGCONT: works again with its data', async () => {
    await store.set('survivor', 'kept', 600);
    redis.pause();
    try {
      await assertEveryOperationRefused(store, 'stalled');
    } finally {
      redis.resume();
    }
    await eventuallyWorks(store, 'after-stall');
    assert.equal(await store.get('survivor'), 'kept', 'data written before the stall is readable after it');
  });

  test('a killed Redis: every operation rejects with StoreUnavailableError; restarted: works again', async () => {
    await eventuallyWorks(store, 'before-kill');
    await redis.kill();
    await assertEveryOperationRefused(store, 'killed');
    await redis.restart();
    await eventuallyWorks(store, 'after-restart');
  });

  test('Redis down when the store is created: refused, then works once Redis starts', async () => {
    await redis.kill();
    const late = new RedisStore({ url: redis.url, keyPrefix: 'outage-test:' });
    try {
      const { error, withinBound } = await settle(() => late.get('k'));
      assert.ok(withinBound && error instanceof StoreUnavailableError, 'a store whose Redis never answered must refuse promptly');
      await redis.restart();
      await eventuallyWorks(late, 'late-start');
    } finally {
      await late.close();
    }
  });

  test('a connection silenced by the network (partition, failover): refused promptly, then a new connection serves again', async () => {
    await eventuallyWorks(store, 'before-partition');
    const relay = await startRedisRelay(redis.port);
    const behindRelay = new RedisStore({ url: relay.url, keyPrefix: 'outage-test:' });
    try {
      await eventuallyWorks(behindRelay, 'through-relay');
      const connectionsBefore = relay.connections;
      relay.freezeOpenConnections();
      const { error, withinBound } = await settle(() => behindRelay.get('through-relay'));
      assert.ok(withinBound && error instanceof StoreUnavailableError, 'a silent connection must be refused promptly');
      // The old socket never answers again; only a new connection can.
      await eventuallyWorks(behindRelay, 'after-partition');
      assert.ok(relay.connections > connectionsBefore, 'the store opened a new connection');
    } finally {
      await behindRelay.close();
      await relay.close();
    }
  });
});
