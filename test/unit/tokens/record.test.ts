/**
 * Placing a cookie's refresh token against its session's record (lib/tokens/record.ts):
 * pure logic, no store.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Session } from '../../../lib/session/session.ts';
import { adoptRecord, classify, HISTORY_LENGTH, nextRecord, refreshTokenHash, type RefreshRecord } from '../../../lib/tokens/record.ts';

const NOW = 1_800_000_000_000;
const GRACE = 30;
const token = (value: string, expiresAt = NOW + 60_000) => ({ value, expiresAt, refreshAt: expiresAt - 30_000 });

function session(refreshToken: string): Session {
  return { v: 1, id: 's1', iss: 'https://idp', sub: 'u1', user: { sub: 'u1' }, refreshToken, tokens: { '': token('at0', NOW - 1) }, createdAt: NOW - 1000, touchedAt: NOW - 1000 };
}

/** The record after refreshing rt0 → rt1 → … → rt<n>, each `stepMs` apart, ending at `NOW`. */
function recordAfter(n: number, stepMs: number): RefreshRecord {
  let record: RefreshRecord | undefined;
  let current = session('rt0');
  for (let i = 1; i <= n; i++) {
    record = nextRecord(record, current, { refreshToken: `rt${i}`, resource: '', token: token(`at${i}`) }, NOW - (n - i) * stepMs);
    current = adoptRecord(current, record);
  }
  return record as RefreshRecord;
}

describe('classify', () => {
  test('no record: the sign-in token is current', () => {
    assert.equal(classify(session('rt0'), undefined, NOW, GRACE), 'current');
  });

  test('the record\'s own token is current', () => {
    assert.equal(classify(session('rt3'), recordAfter(3, 60_000), NOW, GRACE), 'current');
  });

  test('the immediate predecessor is behind however long ago it was replaced (a lost answer)', () => {
    const record = recordAfter(1, 0);
    assert.equal(classify(session('rt0'), record, NOW + 6 * 24 * 3600_000, GRACE), 'behind');
  });

  test('an older generation is behind within the grace window (parallel requests), stale after it', () => {
    const record = recordAfter(3, 1_000);
    assert.equal(classify(session('rt1'), record, NOW, GRACE), 'behind');
    assert.equal(classify(session('rt1'), record, NOW + (GRACE + 5) * 1000, GRACE), 'stale');
  });

  test('a token the record never knew, or forgot, is stale', () => {
    const record = recordAfter(HISTORY_LENGTH + 2, 60_000);
    assert.equal(classify(session('rt0'), record, NOW, GRACE), 'stale');
    assert.equal(classify(session('foreign'), record, NOW, GRACE), 'stale');
    assert.equal(record.history.length, HISTORY_LENGTH, 'history stays bounded');
  });

  test('an indeterminate record refuses every copy', () => {
    const record = { ...recordAfter(1, 0), indeterminate: true };
    assert.equal(classify(session('rt1'), record, NOW, GRACE), 'indeterminate');
    assert.equal(classify(session('rt0'), record, NOW, GRACE), 'indeterminate');
  });
});

describe('records', () => {
  test('a provider that keeps the refresh token replaces nothing: no history entry', () => {
    const first = nextRecord(undefined, session('rt0'), { refreshToken: 'rt0', resource: '', token: token('at1') }, NOW);
    assert.deepEqual(first.history, []);
    assert.equal(first.current.rtHash, refreshTokenHash('rt0'));
    assert.equal(classify(session('rt0'), first, NOW, GRACE), 'current');
  });

  test('adopting takes the record\'s refresh token and the longer-lived token per resource; unchanged is the same object', () => {
    const record = recordAfter(1, 0);
    const adopted = adoptRecord(session('rt0'), record);
    assert.equal(adopted.refreshToken, 'rt1');
    assert.equal(adopted.tokens['']?.value, 'at1');
    assert.equal(adoptRecord(adopted, record), adopted);
  });

  test('expired access tokens are not carried into the record', () => {
    const base = { ...session('rt0'), tokens: { old: token('x', NOW - 1), live: token('y') } };
    const record = nextRecord(undefined, base, { refreshToken: 'rt1', resource: 'new', token: token('z') }, NOW);
    assert.deepEqual(Object.keys(record.current.tokens).sort(), ['live', 'new']);
  });
});
