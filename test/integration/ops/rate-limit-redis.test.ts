/**
 * The shared-store seam of the rate limits (`setRateLimitBackend`), against a real
 * redis-server: two broker instances (two configurations with the same secrets, as two
 * processes would have) share one budget, and while Redis does not answer the in-memory
 * insurance limiter keeps giving verdicts instead of failing or letting everything through.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { loadConfig, type Config } from '../../../lib/config/load.ts';
import { BrokerError } from '../../../lib/errors.ts';
import { limitApiCall, limitSignIn, setRateLimitBackend } from '../../../lib/ops/rate-limit.ts';
import { freePort } from '../../helpers/ports.ts';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
let server: ChildProcess | undefined;
let client: ReturnType<typeof createClient> | undefined;

function instanceConfig(secret: string, env: Record<string, string>): Config {
  return loadConfig({
    APP_BASE_URL: 'http://localhost:3000',
    OIDC_ISSUER: 'http://localhost:3001',
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: 'cloakroom-test',
    OIDC_CLIENT_SECRET: 'not-used-here',
    SESSION_SECRETS: secret,
    BFF_ROUTES: '[]',
    ...env,
  });
}

async function verdict(call: Promise<void>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (error) {
    if (error instanceof BrokerError) return error.status;
    throw error;
  }
}

before(async () => {
  if (!hasRedis) return;
  const port = await freePort();
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  client = createClient({ url: `redis://127.0.0.1:${port}`, disableOfflineQueue: true, commandOptions: { timeout: 200 } });
  client.on('error', () => undefined);
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect();
      break;
    } catch (error) {
      if (attempt > 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  setRateLimitBackend({ redis: client, keyPrefix: 'cloakroom-test:' });
});

after(async () => {
  setRateLimitBackend({});
  if (server?.pid) process.kill(server.pid, 'SIGCONT');
  await client?.close().catch(() => undefined);
  if (server?.pid) process.kill(server.pid, 'SIGKILL');
});

test('two instances sharing one Redis share one budget per session and per address', { skip: hasRedis ? false : 'SKIPPED: redis-server is not installed' }, async () => {
  const secret = randomBytes(32).toString('base64url');
  const first = instanceConfig(secret, { RATE_LIMIT_API: '3', RATE_LIMIT_AUTH: '2' });
  const second = instanceConfig(secret, { RATE_LIMIT_API: '3', RATE_LIMIT_AUTH: '2' });
  const sessionId = randomBytes(16).toString('base64url');
  const request = new Request('http://localhost/api/x', { headers: { 'x-forwarded-for': '203.0.113.5' } });
  const seen = [];
  for (const config of [first, second, first, second]) seen.push(await verdict(limitApiCall(request, config, sessionId)));
  assert.deepEqual(seen, [200, 200, 200, 429], 'the fourth call is over the budget, whichever instance takes it');
  assert.deepEqual(
    [await verdict(limitSignIn(request, first)), await verdict(limitSignIn(request, second)), await verdict(limitSignIn(request, first))],
    [200, 200, 429],
  );
  // Nothing in the clear: no session id, no address in any key.
  const keys = await client!.keys('cloakroom-test:*');
  assert.ok(keys.length >= 2, `keys written: ${keys.length}`);
  for (const key of keys) {
    assert.match(key, /^cloakroom-test:(api|auth):rate:[A-Za-z0-9_-]{43}$/);
    assert.ok(!key.includes(sessionId) && !key.includes('203.0.113'));
  }
});

test('while Redis does not answer, the insurance limiter gives verdicts', { skip: hasRedis ? false : 'SKIPPED: redis-server is not installed' }, async () => {
  const config = instanceConfig(randomBytes(32).toString('base64url'), { RATE_LIMIT_API: '2' });
  const request = new Request('http://localhost/api/x');
  process.kill(server!.pid!, 'SIGSTOP');
  try {
    const sessionId = randomBytes(16).toString('base64url');
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(await verdict(limitApiCall(request, config, sessionId)));
    assert.deepEqual(seen, [200, 200, 429]);
  } finally {
    process.kill(server!.pid!, 'SIGCONT');
  }
});
