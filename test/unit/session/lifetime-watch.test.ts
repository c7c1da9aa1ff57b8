/** The pure parts of the stream watch (lib/session/lifetime-watch.ts): deadlines and the outage rule. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outageTooLong, STORE_OUTAGE_LIMIT_MS, timeoutReason } from '../../../lib/session/lifetime-watch.ts';

const lifetimes = { idleTimeout: 60, absoluteTimeout: 600 };

test('a stream lives until its idle or absolute deadline, whichever comes first', () => {
  const session = { createdAt: 1_000_000, touchedAt: 1_000_000 };
  assert.equal(timeoutReason(session, lifetimes, 1_000_000 + 59_999), undefined);
  assert.equal(timeoutReason(session, lifetimes, 1_000_000 + 60_000), 'idle');
  // Touched late: the absolute timeout still ends it.
  const touched = { createdAt: 1_000_000, touchedAt: 1_000_000 + 590_000 };
  assert.equal(timeoutReason(touched, lifetimes, 1_000_000 + 599_999), undefined);
  assert.equal(timeoutReason(touched, lifetimes, 1_000_000 + 600_000), 'expired');
});

test('a store outage ends streams only once it has lasted the limit', () => {
  assert.equal(STORE_OUTAGE_LIMIT_MS, 30_000);
  assert.equal(outageTooLong(0, STORE_OUTAGE_LIMIT_MS - 1), false);
  assert.equal(outageTooLong(0, STORE_OUTAGE_LIMIT_MS), true);
});
