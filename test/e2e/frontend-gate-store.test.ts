/**
 * The frontend's session gate (BFF_FRONTEND_AUTH=required) on Redis, through `npm start`
 * and a real redis-server: while Redis is stalled (SIGSTOP) a signed-in browser's
 * navigation answers 503 store_unavailable promptly — never a sign-in redirect, never a
 * cleared cookie (CONTRACT.md: a session is never lost to a store blip) — assets still
 * load (they are not gated), and once Redis is back the same cookie opens the page.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { BrowserClient } from '../helpers/stack.ts';
import { rawRequest, type RawAnswer } from '../helpers/raw-http.ts';

const BOUND_MS = 3_000;
const SHELL = '<!doctype html><title>gated app</title><body>GATED-SHELL</body>';
const site = mkdtempSync(join(tmpdir(), 'cloakroom-frontend-gate-'));

/** A browser navigation with the client's cookies (Node's fetch would send `Sec-Fetch-Mode: cors`). */
function navigate(client: BrowserClient, path: string): Promise<RawAnswer> {
  return rawRequest(stack.url, {
    path,
    headers: [['Accept', 'text/html'], ['Sec-Fetch-Mode', 'navigate'], ['Cookie', client.cookieHeader()]],
    signal: AbortSignal.timeout(BOUND_MS),
  });
}

let redis: RedisServer;
let stack: ProductionStack;

before(async () => {
  mkdirSync(join(site, 'assets'));
  writeFileSync(join(site, 'index.html'), SHELL);
  writeFileSync(join(site, 'assets', 'app-1a2b3c4d.js'), 'export {};');
  redis = await startRedis();
  stack = await startProductionStack({ npmStart: true, env: { REDIS_URL: redis.url, BFF_FRONTEND_DIR: site, BFF_FRONTEND_AUTH: 'required' } });
});
after(async () => {
  redis?.resume();
  await stack?.close();
  await redis?.close();
  rmSync(site, { recursive: true, force: true });
});

function clearsSession(answer: RawAnswer): string[] {
  return ([] as string[]).concat(answer.headers['set-cookie'] ?? []).filter((c) => /^cloakroom(\.\d+)?=/.test(c) && /Max-Age=0/i.test(c));
}

describe('the frontend gate on a stalled store', () => {
  test('503 store_unavailable, no redirect, no cleared cookie; assets still served; the same cookie works again afterwards', async () => {
    const alice = new BrowserClient(stack.url);
    const callback = await alice.signIn('alice', 'alice-password', '/orders/42');
    assert.equal(callback.headers.get('location'), `${stack.url}/orders/42`);
    const page = await navigate(alice, '/orders/42');
    assert.equal(page.status, 200);
    assert.equal(page.body.toString(), SHELL);
    assert.equal(page.headers['cache-control'], 'no-store', 'a gated shell is not kept');
    const stranger = await navigate(new BrowserClient(stack.url), '/orders/42');
    assert.equal(stranger.status, 302, 'without a session: sent to sign in');

    redis.pause();
    try {
      // The revocation check may be answered by the client-side cache for up to its 1 s TTL.
      const until = Date.now() + 1_000 + BOUND_MS;
      let response = await navigate(alice, '/orders/42');
      while (response.status === 200 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        response = await navigate(alice, '/orders/42');
      }
      assert.equal(response.status, 503);
      assert.deepEqual(JSON.parse(response.body.toString()), { error: 'store_unavailable' });
      assert.equal(response.headers.location, undefined, 'never sent to sign in because Redis blinked');
      assert.deepEqual(clearsSession(response), []);
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
      const asset = await alice.fetch('/assets/app-1a2b3c4d.js', { signal: AbortSignal.timeout(BOUND_MS) });
      assert.equal(asset.status, 200, 'assets need no store');
    } finally {
      redis.resume();
    }
    const deadline = Date.now() + BOUND_MS;
    let again = await navigate(alice, '/orders/42');
    while (again.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      again = await navigate(alice, '/orders/42');
    }
    assert.equal(again.status, 200, 'the same cookie opens the page once Redis is back');
    assert.equal(again.body.toString(), SHELL);
  });
});
