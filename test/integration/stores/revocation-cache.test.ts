/**
 * The revocation check's client-side cache on a real redis-server, with two stores as two
 * broker instances. Counted by the server (`INFO commandstats`), never guessed from timings:
 *  - repeated checks of a session send Redis no read at all;
 *  - a mark another instance writes is seen within a second, pushed by Redis (CLIENT
 *    TRACKING). The reader's cache TTL is set far beyond the test, so what makes the mark
 *    visible can only be the invalidation;
 *  - a dropped connection flushes the cache: a mark written while the reader was cut off
 *    (its invalidation lost with the connection) is still seen, and with Redis down a
 *    check rejects with StoreUnavailableError, never answers "not revoked" from memory.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type Config } from '../../../lib/config/load.ts';
import { endCreatedBefore, endSession, isSessionEnded } from '../../../lib/session/revocation.ts';
import type { Session } from '../../../lib/session/session.ts';
import { RedisStore } from '../../../lib/stores/redis.ts';
import { StoreUnavailableError } from '../../../lib/stores/store.ts';
import { startRedis, type RedisServer } from '../../helpers/redis-server.ts';

let redis: RedisServer;
let writer: RedisStore;
let reader: RedisStore;
const config: Config = loadConfig({
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'revocation-cache-test',
  OIDC_CLIENT_SECRET: 'Xb7mQ2pL9wRt4vNc8kZy3hFs6dJa1gUe5oIi0TqWn3',
  SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
});

function session(name: string): Session {
  const now = Date.now();
  return { v: 1, id: `id-${name}-${now}`, iss: 'https://id.example.com', sub: `user-${name}`, idpSid: `sid-${name}`, user: { sub: `user-${name}` }, tokens: {}, createdAt: now, touchedAt: now } as Session;
}

/** Reads (GET/MGET) the server has executed so far, from every client. */
function readsOnServer(): number {
  let total = 0;
  for (const line of redis.cli('INFO', 'commandstats')) {
    const match = /^cmdstat_(get|mget):calls=(\d+)/.exec(line.trim());
    if (match) total += Number(match[2]);
  }
  return total;
}

/** Milliseconds until `condition` holds (errors count as "not yet"); throws past `withinMs`. */
async function until(condition: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if (await condition().catch(() => false)) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`not within ${withinMs} ms`);
}

before(async () => {
  redis = await startRedis();
  writer = new RedisStore({ url: redis.url, keyPrefix: 'rc:' });
  // Ten minutes: whatever makes a mark visible within this test is Redis's invalidation or a flush.
  reader = new RedisStore({ url: redis.url, keyPrefix: 'rc:', revocationCacheTtlMs: 600_000 });
});
after(async () => {
  await writer?.close();
  await reader?.close();
  await redis?.close();
});

describe('revocation check with client-side caching (two instances, one Redis)', () => {
  test('1,000 repeated checks send no read to Redis; another instance’s logout is seen within a second', async () => {
    const alice = session('alice');
    const readsAtStart = readsOnServer();
    assert.equal(await isSessionEnded(reader, config, alice), false);
    assert.ok(readsOnServer() - readsAtStart >= 1, 'the first check must read Redis (else the count below proves nothing)');
    const readsBefore = readsOnServer();
    for (let i = 0; i < 1_000; i++) assert.equal(await isSessionEnded(reader, config, alice), false);
    assert.equal(readsOnServer() - readsBefore, 0, '1,000 checks of a cached session must not reach Redis');

    await endSession(writer, config, alice);
    const seenAfterMs = await until(() => isSessionEnded(reader, config, alice), 1_000);
    assert.ok(seenAfterMs < 1_000, `seen after ${seenAfterMs} ms`);
  });

  test('the global revoked-before switch written by another instance is seen within a second', async () => {
    const bob = session('bob');
    assert.equal(await isSessionEnded(reader, config, bob), false);
    assert.equal(await isSessionEnded(reader, config, bob), false);
    await endCreatedBefore(writer, config, Date.now());
    await until(() => isSessionEnded(reader, config, bob), 1_000);
  });

  test('a dropped connection flushes the cache: a mark written meanwhile is seen, and with Redis down a check rejects', async () => {
    await new Promise((resolve) => setTimeout(resolve, 5)); // after the previous test's switch
    const carol = session('carol');
    assert.equal(await isSessionEnded(reader, config, carol), false);
    const readsBefore = readsOnServer();
    assert.equal(await isSessionEnded(reader, config, carol), false);
    assert.equal(readsOnServer() - readsBefore, 0, 'the second check must be a cache hit');

    // Cut every connection (the reader's tracking one with it), and write the logout while
    // the reader is disconnected: its invalidation is lost with the connection. Only a
    // flushed cache lets the reader see it (its TTL is ten minutes).
    redis.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    await until(async () => (await endSession(writer, config, carol), true), 2_000);
    await until(() => isSessionEnded(reader, config, carol), 2_000);

    // Redis down: a cached "not ended" must not be served for a session the reader had cached.
    const dave = session('dave');
    assert.equal(await isSessionEnded(reader, config, dave), false);
    await redis.kill();
    // Until the client has read the socket's close, nobody can know the server is gone (a
    // silent partition is bounded by the one-second TTL instead); once it has, the cache
    // is gone and the check rejects.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await assert.rejects(isSessionEnded(reader, config, dave), StoreUnavailableError);
    await redis.restart();
    // Back within a second of Redis's return (the reconnect backoff is capped at 500 ms).
    await until(async () => (await isSessionEnded(reader, config, dave)) === false, 2_000);
  });
});
