import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnsealCache } from '../../../lib/session/unseal-cache.ts';

type Value = { id: string };
const limits = { maxEntries: 3, maxBytes: 1_000, maxFailures: 2, ttlMs: 60_000 };
const ok = (id: string) => async () => ({ id });
const bad = async () => ({ failure: 'invalid' });

describe('UnsealCache', () => {
  it('opens once, then serves hits', async () => {
    const cache = new UnsealCache<Value>(limits);
    let opened = 0;
    const open = async () => {
      opened++;
      return { id: 'a' };
    };
    assert.deepEqual(await cache.get('a', 10, open), { id: 'a' });
    assert.deepEqual(await cache.get('a', 10, open), { id: 'a' });
    assert.equal(opened, 1);
    assert.deepEqual(cache.stats, { unseals: 1, cacheHits: 1 });
  });

  it('shares a decrypt in progress among concurrent requests', async () => {
    const cache = new UnsealCache<Value>(limits);
    let opened = 0;
    const open = async () => {
      opened++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { id: 'a' };
    };
    const results = await Promise.all([cache.get('a', 10, open), cache.get('a', 10, open), cache.get('a', 10, open)]);
    assert.equal(opened, 1);
    assert.deepEqual(results, [{ id: 'a' }, { id: 'a' }, { id: 'a' }]);
  });

  it('evicts the least recently used hit, not the oldest inserted', async () => {
    const cache = new UnsealCache<Value>(limits);
    for (const id of ['a', 'b', 'c']) await cache.get(id, 10, ok(id));
    await cache.get('a', 10, ok('a')); // a is now the most recently used
    await cache.get('d', 10, ok('d'));
    assert.equal(cache.has('a'), true);
    assert.equal(cache.has('b'), false, 'b was the least recently used');
  });

  it('is bounded by bytes as well as entries', async () => {
    const cache = new UnsealCache<Value>(limits);
    await cache.get('a', 400, ok('a'));
    await cache.get('b', 400, ok('b'));
    await cache.get('c', 400, ok('c'));
    assert.ok(cache.size.bytes <= 1_000, `${cache.size.bytes} bytes`);
    assert.equal(cache.has('a'), false);
    assert.equal(cache.has('c'), true);
  });

  it('keeps failures apart: any number of them never evicts a hit', async () => {
    const cache = new UnsealCache<Value>(limits);
    for (const id of ['a', 'b', 'c']) await cache.get(id, 10, ok(id));
    for (let i = 0; i < 100; i++) assert.deepEqual(await cache.get(`junk-${i}`, 10, bad), { failure: 'invalid' });
    for (const id of ['a', 'b', 'c']) assert.equal(cache.has(id), true, id);
    assert.equal(cache.size.entries, 3);
    assert.equal(cache.size.failures, 2, 'the failure cache is bounded on its own');
  });

  it('remembers a repeated failure without opening again', async () => {
    const cache = new UnsealCache<Value>(limits);
    let opened = 0;
    const open = async () => {
      opened++;
      return { failure: 'invalid' };
    };
    await cache.get('x', 10, open);
    assert.deepEqual(await cache.get('x', 10, open), { failure: 'invalid' });
    assert.equal(opened, 1);
  });
});
