/**
 * DPoP with SESSION_STORAGE=server and a real redis-server, through `npm start`: the
 * session's private DPoP key lives in the store only sealed — every value is read back
 * from Redis and none holds the key (or a DPoP-bound token) in the clear, while the
 * sealed session does hold the key the API saw the proofs made with.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import { createClient } from 'redis';
import { loadConfig } from '../../lib/config/load.ts';
import { unseal } from '../../lib/session/codec.ts';
import { startProductionStack, CLIENT_ID, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';

let redis: RedisServer;
let stack: ProductionStack;
before(async () => {
  redis = await startRedis();
  stack = await startProductionStack({ npmStart: true, dpopRoute: true, env: { REDIS_URL: redis.url, SESSION_STORAGE: 'server', REDIS_KEY_PREFIX: 'e2e-dpop:' } });
});
after(async () => {
  await stack?.close();
  await redis?.close();
});

/** Every value in Redis under the broker's prefix, whatever its type. */
async function allValues(): Promise<string[]> {
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    const values: string[] = [];
    for await (const keys of client.scanIterator({ MATCH: 'e2e-dpop:*', COUNT: 100 })) {
      for (const key of keys) {
        const type = await client.type(key);
        if (type === 'string') values.push((await client.get(key)) ?? '');
        else if (type === 'hash') values.push(...Object.values(await client.hGetAll(key)).map(String));
        else if (type === 'set') values.push(...(await client.sMembers(key)));
        else if (type === 'zset') values.push(...(await client.zRange(key, 0, -1)));
        else if (type === 'list') values.push(...(await client.lRange(key, 0, -1)));
        values.push(key);
      }
    }
    return values;
  } finally {
    client.destroy();
  }
}

test('the private DPoP key is in the store only sealed; the sealed session holds the key the proofs were made with', async () => {
  const browser = new BrowserClient(stack.url);
  await browser.signIn('alice');
  const answer = await browser.api('/api/secure/whoami');
  const body = (await answer.json()) as { dpopBound: boolean; proofJkt: string };
  assert.equal(answer.status, 200, JSON.stringify(body));
  assert.equal(body.dpopBound, true);

  const config = loadConfig({
    APP_BASE_URL: stack.url,
    OIDC_ISSUER: stack.idp.issuer,
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: CLIENT_ID,
    OIDC_CLIENT_SECRET: stack.clientSecret,
    SESSION_SECRETS: stack.sessionSecret,
  });
  const values = await allValues();
  assert.ok(values.length > 0);
  let key: { d: string; x: string; y: string; kty: string; crv: string } | undefined;
  for (const value of values) {
    if (!value.startsWith('Fe26.2*')) continue;
    const opened = await unseal<{ dpopKey?: typeof key }>(value, config.session, config.session.absoluteTimeout);
    if ('data' in opened && opened.data.dpopKey) key = opened.data.dpopKey;
  }
  assert.ok(key, 'a sealed session in the store holds the DPoP key');
  assert.equal(await calculateJwkThumbprint({ kty: key.kty, crv: key.crv, x: key.x, y: key.y }), body.proofJkt, 'the proofs were made with that key');
  for (const value of values) {
    assert.ok(!value.includes(key.d), 'the private key in the clear in the store');
    assert.doesNotMatch(value, /"d"\s*:|P-256/);
  }
  const bound = stack.issued.filter((t) => t.kind === 'access_token' && t.grantType === 'refresh_token').map((t) => t.value);
  assert.ok(bound.length > 0);
  for (const token of bound) assert.ok(!values.some((v) => v.includes(token)), 'a DPoP-bound token in the clear in the store');
  const logs = stack.serverStderr() + stack.serverStdout();
  assert.ok(!logs.includes(key.d), 'the private key in the logs');
  // The cookie is only a sealed handle.
  assert.doesNotMatch(browser.cookieHeader(), /P-256|"kty"/);
});
