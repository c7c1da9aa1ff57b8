import { randomBytes } from 'node:crypto';
import { log } from '../log.ts';
import type { KeyValueStore } from '../stores/store.ts';

/**
 * A lease on a store key, the per-session refresh lock (AUDIT M5; the pattern of
 * Redis's single-instance lock): taken with `setIfAbsent` and a random owner token,
 * renewed while the work runs, released only by its owner (`deleteIfEquals`), so a
 * holder that outlived its lease can never delete the lock of the one who took over.
 * The lease is short so that a crashed holder blocks others only briefly; renewal keeps
 * a slow provider call covered however long it takes.
 *
 * The lease spans several keys: the lock's key under every session secret
 * (`storeKeys`). Mid-rotation, instances hold different sets of SESSION_SECRETS (one
 * already has the new secret, another not yet), so a single "canonical" key could differ
 * between them and both would refresh. Every set shares at least the old secret's key,
 * and whoever holds all of its own keys holds that one: two instances never both hold
 * the lease.
 */
export interface Lease {
  /**
   * True once a renewal found the lock gone or taken over, or when no renewal has been
   * confirmed for two thirds of the lease (the store unreachable): the key may have run
   * out, and another instance may hold the lock. Checked right before the provider call.
   */
  readonly lost: boolean;
  release(): Promise<void>;
}

export async function tryLease(store: KeyValueStore, keys: readonly string[], leaseSeconds: number): Promise<Lease | undefined> {
  const owner = randomBytes(16).toString('base64url');
  const held: string[] = [];
  const releaseHeld = () =>
    Promise.all(held.map((key) => store.deleteIfEquals(key, owner))).catch((error: unknown) => {
      log.warn('refresh_lock_release_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
    });
  // In one order on every instance, so that two contenders meet on the same first key.
  for (const key of [...keys].sort()) {
    let taken: boolean;
    try {
      taken = await store.setIfAbsent(key, owner, leaseSeconds);
    } catch (error) {
      await releaseHeld();
      throw error;
    }
    if (!taken) {
      await releaseHeld();
      return undefined;
    }
    held.push(key);
  }
  let lost = false;
  let confirmedAt = Date.now();
  const renew = async () => {
    const asked = Date.now();
    try {
      const renewed = await Promise.all(held.map((key) => store.extendIfEquals(key, owner, leaseSeconds)));
      if (renewed.every(Boolean)) {
        confirmedAt = asked;
      } else {
        lost = true;
        clearInterval(timer);
        log.warn('refresh_lock_lost');
      }
    } catch (error) {
      // An unreachable store: the lease may run out; the fencing write still protects the record.
      log.warn('refresh_lock_renewal_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
    }
  };
  // Three renewals per lease: one missed renewal (a GC pause, a slow store) is survivable.
  const timer = setInterval(() => void renew(), (leaseSeconds * 1000) / 3);
  timer.unref();
  return {
    get lost() {
      return lost || Date.now() - confirmedAt > (leaseSeconds * 1000 * 2) / 3;
    },
    async release() {
      clearInterval(timer);
      await releaseHeld();
    },
  };
}
