/**
 * What a session costs in Redis, measured, not guessed (README, "Many instances"): N
 * sign-ins and one API call each, through the in-process stack on a real redis-server,
 * then DBSIZE and the sum of MEMORY USAGE over every key, per session, for cookie and
 * server storage. Run: node bench/lib/redis-sizing.ts [N]
 */
import { setStoreForTests } from '../../lib/stores/index.ts';
import { RedisStore } from '../../lib/stores/redis.ts';
import { startRedis } from '../../test/helpers/redis-server.ts';
import { startStack } from '../../test/helpers/stack.ts';

const N = Number(process.argv[2] ?? 50);

for (const storage of ['cookie', 'server'] as const) {
  const redis = await startRedis();
  const stack = await startStack({ env: { SESSION_STORAGE: storage, RATE_LIMIT_API: '0', RATE_LIMIT_AUTH: '0' } });
  const store = new RedisStore({ url: redis.url, keyPrefix: 'cloakroom:' });
  setStoreForTests(store);
  for (let i = 0; i < N; i++) {
    const browser = stack.newBrowser();
    await browser.signIn('alice');
    const answer = await browser.api('/auth/session');
    if (answer.status !== 200) throw new Error(`GET /auth/session answered ${answer.status}`);
  }
  const keys = redis.cli('--scan', '--pattern', '*').filter(Boolean);
  let bytes = 0;
  for (const key of keys) bytes += Number(redis.cli('MEMORY', 'USAGE', key)[0] ?? 0);
  const dbsize = Number(redis.cli('DBSIZE')[0]);
  console.log(JSON.stringify({ storage, sessions: N, dbsize, keysPerSession: +(dbsize / N).toFixed(2), bytesPerSession: Math.round(bytes / N), usedMemory: redis.cli('INFO', 'memory').find((l) => l.startsWith('used_memory:'))?.trim() }));
  await store.close();
  await stack.close();
  await redis.close();
}
process.exit(0);
