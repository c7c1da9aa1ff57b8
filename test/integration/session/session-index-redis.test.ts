/**
 * The per-user session index on a real redis-server, written by two store clients (two
 * instances) at once: concurrent sign-ins of one user all land (compare-and-set loops on
 * the user's one sealed value), the index keeps the newest MAX_SESSIONS_PER_USER, "last
 * seen" is written only when a session write crosses a granularity interval, and Redis
 * never holds a session id, a refresh token or a user in the clear.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { loadConfig, type Config } from '../../../lib/config/load.ts';
import { newSessionId } from '../../../lib/session/manager.ts';
import {
  LAST_SEEN_GRANULARITY_MS,
  MAX_SESSIONS_PER_USER,
  indexSession,
  liveIndexEntries,
  touchIndexedSession,
  unindexSessions,
} from '../../../lib/session/session-index.ts';
import type { Session } from '../../../lib/session/session.ts';
import { RedisStore } from '../../../lib/stores/redis.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';

const PREFIX = 'index-test:';
const ISS = 'http://idp.test';
let redis: RedisServer;
let instances: RedisStore[];
let config: Config;

before(async () => {
  redis = await startRedis();
  instances = [new RedisStore({ url: redis.url, keyPrefix: PREFIX }), new RedisStore({ url: redis.url, keyPrefix: PREFIX })];
  config = loadConfig({
    APP_BASE_URL: 'http://localhost:3000',
    OIDC_ISSUER: ISS,
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: 'client',
    OIDC_CLIENT_SECRET: randomBytes(24).toString('base64url'),
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
  });
});
after(async () => {
  for (const store of instances ?? []) await store.close();
  await redis?.close();
});

function newSession(sub: string, createdAt = Date.now()): Session {
  return {
    v: 1,
    id: newSessionId(),
    iss: ISS,
    sub,
    idpSid: randomBytes(8).toString('hex'),
    user: { sub },
    refreshToken: `rt-${randomBytes(24).toString('base64url')}`,
    tokens: {},
    createdAt,
    touchedAt: createdAt,
  };
}

const signInRequest = () =>
  new Request('http://localhost:3000/auth/callback', { headers: { 'user-agent': `Browser/1.0 ${'x'.repeat(500)}`, 'x-forwarded-for': '203.0.113.7' } });

test('40 concurrent sign-ins of one user across two instances all land in the index, metadata coarse and bounded', async () => {
  const sessions = Array.from({ length: 40 }, () => newSession('user-concurrent'));
  await Promise.all(sessions.map((session, i) => indexSession(instances[i % 2], config, session, signInRequest())));
  const entries = await liveIndexEntries(instances[0], config, ISS, 'user-concurrent');
  assert.equal(entries.length, 40, 'a lost compare-and-set race lost a sign-in');
  assert.deepEqual(new Set(entries.map((e) => e.id)), new Set(sessions.map((s) => s.id)));
  for (const entry of entries) {
    assert.equal(entry.network, '203.0.113.0/24');
    assert.equal(entry.userAgent.length, 200, 'the user agent is truncated');
  }

  const dump = redis.cli('KEYS', '*').map((key) => `${key}\n${redis.cli('GET', key).join('\n')}`).join('\n');
  assert.ok(dump.length > 0);
  for (const session of sessions) {
    assert.ok(!dump.includes(session.id), 'a session id in the clear');
    assert.ok(!dump.includes(session.refreshToken as string), 'a refresh token in the clear');
    assert.ok(!dump.includes(session.idpSid as string), 'a provider sid in the clear');
  }
  assert.ok(!dump.includes('user-concurrent'), 'the user in the clear');
});

test(`the index keeps the newest ${MAX_SESSIONS_PER_USER} sessions of a user`, async () => {
  const start = Date.now() - 60_000;
  const sessions = Array.from({ length: MAX_SESSIONS_PER_USER + 10 }, (_, i) => newSession('user-many', start + i * 100));
  for (const session of sessions) await indexSession(instances[0], config, session, signInRequest());
  const entries = await liveIndexEntries(instances[1], config, ISS, 'user-many');
  assert.equal(entries.length, MAX_SESSIONS_PER_USER);
  assert.deepEqual(entries.map((e) => e.id), sessions.slice(10).reverse().map((s) => s.id), 'newest first, the oldest dropped');
});

test('last seen: written only when a session write crosses into a new interval; unindex removes', async () => {
  const bucketStart = Math.floor(Date.now() / LAST_SEEN_GRANULARITY_MS) * LAST_SEEN_GRANULARITY_MS;
  const session = newSession('user-seen', bucketStart - LAST_SEEN_GRANULARITY_MS);
  await indexSession(instances[0], config, session, signInRequest());
  const key = () => redis.cli('KEYS', `${PREFIX}index:*`).sort().join(',');
  const value = () => redis.cli('KEYS', `${PREFIX}index:*`).map((k) => redis.cli('GET', k).join('')).join('|');

  const before = value();
  // The previous write was in this same interval: nothing is written.
  await touchIndexedSession(instances[1], config, { ...session, touchedAt: bucketStart + 1 }, bucketStart + 2);
  assert.equal(value(), before, 'a touch within one interval wrote to the store');

  const now = Date.now();
  await touchIndexedSession(instances[1], config, session, now);
  const [entry] = await liveIndexEntries(instances[0], config, ISS, 'user-seen');
  assert.equal(entry.lastSeenAt, now);
  assert.ok(key().length > 0);

  await unindexSessions(instances[0], config, ISS, 'user-seen', new Set([session.id]));
  assert.deepEqual(await liveIndexEntries(instances[0], config, ISS, 'user-seen'), []);
});
