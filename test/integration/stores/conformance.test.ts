/**
 * The `KeyValueStore` contract (lib/stores/store.ts), run against BOTH stores: the
 * in-process MemoryStore and the RedisStore on a real redis-server (helpers/redis-server.ts).
 * Whatever the rest of lib/ relies on — expiry, the lock's set-if-absent, the fenced
 * compare-and-set, owner-only renew and release, getMany's order — must hold on each.
 * The Redis side also shows every key under the configured prefix, stored as given.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryStore } from '../../../lib/stores/memory.ts';
import { RedisStore } from '../../../lib/stores/redis.ts';
import type { KeyValueStore } from '../../../lib/stores/store.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Expiry tests use TTLs of a tenth of a second and look again well after. */
const SHORT_TTL = 0.1;
const WELL_AFTER_MS = 400;

let redis: RedisServer;
let redisStore: RedisStore;
const memoryStore = new MemoryStore();
const PREFIX = 'conformance-test:';

before(async () => {
  redis = await startRedis();
  redisStore = new RedisStore({ url: redis.url, keyPrefix: PREFIX });
});
after(async () => {
  memoryStore.close();
  await redisStore?.close();
  await redis?.close();
});

let n = 0;
/** A key of its own per test, so that the cases cannot see each other. */
const fresh = (name: string) => `${name}:${++n}`;

function conformance(name: string, store: () => KeyValueStore): void {
  describe(`KeyValueStore conformance: ${name}`, () => {
    test('get of a missing key is undefined; set then get returns the value', async () => {
      const key = fresh('plain');
      assert.equal(await store().get(key), undefined);
      await store().set(key, 'v1', 60);
      assert.equal(await store().get(key), 'v1');
      await store().set(key, 'v2', 60);
      assert.equal(await store().get(key), 'v2', 'set overwrites');
    });

    test('an entry expires after its TTL', async () => {
      const key = fresh('ttl');
      await store().set(key, 'v', SHORT_TTL);
      const long = fresh('ttl-long');
      await store().set(long, 'v', 60);
      await sleep(WELL_AFTER_MS);
      assert.equal(await store().get(key), undefined, 'expired entry still readable');
      assert.equal(await store().get(long), 'v', 'an unexpired entry vanished');
    });

    test('getMany answers in the order asked, undefined for the missing, [] for none', async () => {
      const [a, b, c] = [fresh('many'), fresh('many'), fresh('many')];
      await store().set(a, 'A', 60);
      await store().set(c, 'C', 60);
      assert.deepEqual(await store().getMany([a, b, c]), ['A', undefined, 'C']);
      assert.deepEqual(await store().getMany([c, a]), ['C', 'A']);
      assert.deepEqual(await store().getMany([]), []);
    });

    test('setIfAbsent: only the first caller wins, also among concurrent callers; again once expired', async () => {
      const key = fresh('lock');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store().setIfAbsent(key, `owner-${i}`, SHORT_TTL)));
      assert.equal(results.filter(Boolean).length, 1, 'exactly one concurrent caller takes the lock');
      const winner = results.indexOf(true);
      assert.equal(await store().get(key), `owner-${winner}`, 'the value is the winner\'s');
      assert.equal(await store().setIfAbsent(key, 'late', 60), false);
      await sleep(WELL_AFTER_MS);
      assert.equal(await store().setIfAbsent(key, 'after-expiry', 60), true, 'an expired lock can be taken again');
      assert.equal(await store().get(key), 'after-expiry');
    });

    test('compareAndSet writes only while the value still equals expected (undefined: only while absent)', async () => {
      const key = fresh('cas');
      assert.equal(await store().compareAndSet(key, 'nothing-yet', 'x', 60), false, 'a present expectation on an absent key must fail');
      assert.equal(await store().get(key), undefined);
      assert.equal(await store().compareAndSet(key, undefined, 'gen-1', 60), true);
      assert.equal(await store().compareAndSet(key, undefined, 'gen-1b', 60), false, 'absent-expectation on a present key must fail');
      assert.equal(await store().compareAndSet(key, 'gen-0', 'stale-writer', 60), false, 'a fenced-out writer overwrote');
      assert.equal(await store().get(key), 'gen-1');
      assert.equal(await store().compareAndSet(key, 'gen-1', 'gen-2', SHORT_TTL), true);
      assert.equal(await store().get(key), 'gen-2');
      await sleep(WELL_AFTER_MS);
      assert.equal(await store().get(key), undefined, 'compareAndSet applies the new TTL');
    });

    test('compareAndSet is atomic: of many writers expecting the same value, one wins', async () => {
      const key = fresh('cas-race');
      await store().set(key, 'base', 60);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store().compareAndSet(key, 'base', `w${i}`, 60)));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await store().get(key), `w${results.indexOf(true)}`);
    });

    test('extendIfEquals renews only the owner\'s lease', async () => {
      const key = fresh('lease');
      await store().set(key, 'me', SHORT_TTL);
      assert.equal(await store().extendIfEquals(key, 'someone-else', 60), false);
      assert.equal(await store().extendIfEquals(key, 'me', 60), true);
      assert.equal(await store().extendIfEquals(fresh('absent'), 'me', 60), false, 'nothing to extend');
      await sleep(WELL_AFTER_MS);
      assert.equal(await store().get(key), 'me', 'the renewed lease expired at the old TTL');
      const other = fresh('lease-not-renewed');
      await store().set(other, 'me', SHORT_TTL);
      assert.equal(await store().extendIfEquals(other, 'intruder', 60), false);
      await sleep(WELL_AFTER_MS);
      assert.equal(await store().get(other), undefined, 'a refused renewal extended the lease');
    });

    test('deleteIfEquals releases only the owner\'s lock; delete removes unconditionally', async () => {
      const key = fresh('release');
      await store().set(key, 'owner-a', 60);
      assert.equal(await store().deleteIfEquals(key, 'owner-b'), false);
      assert.equal(await store().get(key), 'owner-a', 'another owner\'s release deleted the lock');
      assert.equal(await store().deleteIfEquals(key, 'owner-a'), true);
      assert.equal(await store().get(key), undefined);
      assert.equal(await store().deleteIfEquals(key, 'owner-a'), false, 'a second release reports nothing deleted');
      await store().set(key, 'x', 60);
      await store().delete(key);
      assert.equal(await store().get(key), undefined);
      await store().delete(fresh('never-set'));
    });

    test('values are stored byte for byte (sealed values, Unicode, Lua-special characters)', async () => {
      const key = fresh('bytes');
      const value = `Fe26.2**abc*${'x'.repeat(5000)}*"quotes" 'single' \\ %s \n ünïcødé 🔑 == ~=`;
      await store().set(key, value, 60);
      assert.equal(await store().get(key), value);
      assert.equal(await store().compareAndSet(key, value, `${value}!`, 60), true, 'compare with a long, odd value');
      assert.equal(await store().deleteIfEquals(key, `${value}!`), true);
    });
  });
}

conformance('MemoryStore', () => memoryStore);
conformance('RedisStore (real redis-server)', () => redisStore);

describe('RedisStore keys', () => {
  test('every key lands under REDIS_KEY_PREFIX, exactly as given after it; values as given', async () => {
    const keys = ['ended:abc', 'rt:lock:def', 'bcl:sub:ghi'];
    for (const key of keys) await redisStore.set(key, 'sealed-value', 60);
    await redisStore.setIfAbsent('lock:one', 'owner', 60);
    await redisStore.compareAndSet('cas:one', undefined, 'v', 60);
    await redisStore.compareAndSet('cas:one', 'v', 'w', 60);
    const onServer = redis.cli('KEYS', '*');
    assert.ok(onServer.length >= keys.length + 2);
    for (const key of onServer) assert.ok(key.startsWith(PREFIX), `key outside the prefix: ${key}`);
    for (const key of [...keys, 'lock:one', 'cas:one']) assert.ok(onServer.includes(`${PREFIX}${key}`), `${key} not stored as ${PREFIX}${key}`);
    assert.deepEqual(redis.cli('GET', `${PREFIX}ended:abc`), ['sealed-value']);
    const ttl = Number(redis.cli('PTTL', `${PREFIX}ended:abc`)[0]);
    assert.ok(ttl > 0 && ttl <= 60_000, `TTL on the server is ${ttl} ms`);
  });
});
