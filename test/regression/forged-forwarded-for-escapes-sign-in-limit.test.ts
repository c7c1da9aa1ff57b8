/**
 * Through the production server (`next start`): a Next.js route handler's `Request`
 * carries no socket address, and `next start` only sets `x-forwarded-for` when the client
 * sent none (`??=` in next/dist/server/base-server.js). A client-sent
 * `X-Forwarded-For: 1.2.3.4` therefore reached the broker as the whole chain, with the
 * real peer gone: with TRUSTED_PROXY_HOPS=0 every forged value would have been a fresh
 * sign-in budget. The peer hook (instrumentation.ts → lib/ops/client-address.ts) appends
 * the peer before Next sees the request, so a forged header changes nothing, while a
 * configured trusted proxy's entry is still honoured.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

const stacks: ProductionStack[] = [];
after(async () => {
  for (const stack of stacks) await stack.close();
});

async function login(stack: ProductionStack, forwardedFor?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (forwardedFor !== undefined) headers['x-forwarded-for'] = forwardedFor;
  const response = await fetch(`${stack.url}/auth/login`, { headers, redirect: 'manual' });
  await response.body?.cancel();
  return response;
}

// Both hosts: `next start` (the peer hook) and `npm start`, whose front door holds the
// socket and appends the peer itself — once, though the hook runs in that process too.
for (const npmStart of [false, true]) describe(`${npmStart ? 'npm start (front door)' : 'next start'}, TRUSTED_PROXY_HOPS=0`, () => {
  test('a forged X-Forwarded-For does not change the address used: the auth limit holds', async () => {
    const stack = await startProductionStack({ npmStart, env: { RATE_LIMIT_AUTH: '3', TRUSTED_PROXY_HOPS: '0' } });
    stacks.push(stack);
    const parBefore = stack.idp.stats.parRequests;
    assert.equal((await login(stack)).status, 302, 'no header');
    assert.equal((await login(stack, '1.2.3.4')).status, 302, 'the forged address counts against the peer');
    assert.equal((await login(stack, '5.6.7.8, 9.9.9.9')).status, 302);
    for (const forged of ['1.2.3.4', '10.0.0.1', '2001:db8::1', 'unknown', '', '127.0.0.1, 203.0.113.9']) {
      const refused = await login(stack, forged);
      assert.equal(refused.status, 429, `forged ${JSON.stringify(forged)} gets no budget of its own`);
      assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
      assert.equal(refused.headers.get('location'), null);
    }
    assert.equal(stack.idp.stats.parRequests, parBefore + 3, 'the provider saw only the three within the budget');
    // The callback route is another bundle of the build: it must count against the same budget.
    const callback = await fetch(`${stack.url}/auth/callback?code=x&state=y`, { headers: { 'x-forwarded-for': '4.4.4.4' }, redirect: 'manual' });
    await callback.body?.cancel();
    assert.equal(callback.status, 429, '/auth/callback shares the address budget with /auth/login');
  });
});

for (const npmStart of [false, true]) describe(`${npmStart ? 'npm start (front door)' : 'next start'}, TRUSTED_PROXY_HOPS=1`, () => {
  test('the trusted proxy\'s entry is the client; an entry forged left of it is ignored', async () => {
    const stack = await startProductionStack({ npmStart, env: { RATE_LIMIT_AUTH: '2', TRUSTED_PROXY_HOPS: '1' } });
    stacks.push(stack);
    // What a proxy in front sends: the client's header, then the client's address.
    assert.equal((await login(stack, '198.51.100.1')).status, 302);
    assert.equal((await login(stack, '1.2.3.4, 198.51.100.1')).status, 302);
    assert.equal((await login(stack, '5.6.7.8, 198.51.100.1')).status, 429, 'one client, whatever it forged to the left');
    assert.equal((await login(stack, '198.51.100.2')).status, 302, 'another client behind the same proxy has its own budget');
  });
});
