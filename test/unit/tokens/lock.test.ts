/**
 * The refresh lease (lib/tokens/lock.ts): when renewals cannot be confirmed (the store
 * unreachable), the lease counts as lost before its key could have run out, so that the
 * holder does not send a refresh another instance may be sending too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../../lib/stores/store.ts';
import { MemoryStore } from '../../../lib/stores/memory.ts';
import { tryLease } from '../../../lib/tokens/lock.ts';

class UnreachableForRenewals extends MemoryStore {
  override async extendIfEquals(): Promise<boolean> {
    throw new StoreUnavailableError();
  }
}

test('a lease whose renewals fail counts as lost after two thirds of it', async () => {
  const store = new UnreachableForRenewals();
  const lease = await tryLease(store, ['lock'], 1.5);
  assert.ok(lease, 'taken');
  assert.equal(lease.lost, false, 'fresh');
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal(lease.lost, true, 'no renewal confirmed for 1.1 s of a 1.5 s lease');
  await lease.release();
  store.close();
});

test('a lease whose renewals succeed stays held', async () => {
  const store = new MemoryStore();
  const lease = await tryLease(store, ['lock'], 1.5);
  assert.ok(lease);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal(lease.lost, false);
  await lease.release();
  assert.equal(await store.get('lock'), undefined, 'released');
  store.close();
});

test('mid-rotation: instances keying the lock with different sets of secrets never both hold it', async () => {
  const store = new MemoryStore();
  // Instance A has only the old secret's key; instance B has the old and the new one.
  const a = await tryLease(store, ['old'], 1.5);
  assert.ok(a);
  assert.equal(await tryLease(store, ['new', 'old'], 1.5), undefined, 'B is refused while A holds the old key');
  assert.equal(await store.get('new'), undefined, 'B gave back the key it had taken');
  await a.release();
  const b = await tryLease(store, ['new', 'old'], 1.5);
  assert.ok(b, 'B takes both once A is done');
  assert.equal(await tryLease(store, ['old'], 1.5), undefined, 'and A is refused while B holds them');
  await b.release();
  assert.equal(await store.get('old'), undefined);
  assert.equal(await store.get('new'), undefined);
  store.close();
});
