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

export async function tryLease(store: KeyValueStore, key: string, leaseSeconds: number): Promise<Lease | undefined> {
  const owner = randomBytes(16).toString('base64url');
  if (!(await store.setIfAbsent(key, owner, leaseSeconds))) return undefined;
  let lost = false;
  let confirmedAt = Date.now();
  const renew = async () => {
    const asked = Date.now();
    try {
      if (await store.extendIfEquals(key, owner, leaseSeconds)) {
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
      await store.deleteIfEquals(key, owner).catch((error: unknown) => {
        log.warn('refresh_lock_release_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
      });
    },
  };
}
