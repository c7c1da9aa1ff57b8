/**
 * AUDIT.md M10: `GET /auth/login` made one PAR call to the provider per anonymous request,
 * with no limit at all, so a script looping on it could trip the provider's per-client
 * limits and lock every user out of signing in. With RATE_LIMIT_AUTH the client address
 * gets that many sign-in requests a minute (login and callback together); the refused
 * ones answer `429 rate_limited` with `Retry-After` and never reach the provider.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { metrics } from '../../lib/ops/metrics.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;

before(async () => {
  stack = await startStack();
});

after(async () => {
  await stack?.close();
});

async function rateLimitedCount(scope: 'api' | 'auth'): Promise<number> {
  const values = (await metrics.rateLimited.get()).values;
  return values.find((v) => v.labels.scope === scope)?.value ?? 0;
}

test('a loop on /auth/login is refused with 429 and Retry-After after RATE_LIMIT_AUTH, and the provider sees no more PAR calls', async () => {
  stack.configure({ RATE_LIMIT_AUTH: '3' });
  const client = stack.newBrowser();
  const parBefore = stack.idp.stats.parRequests;
  for (let i = 0; i < 3; i++) assert.equal((await client.fetch('/auth/login')).status, 302, `login ${i + 1} is within the budget`);
  assert.equal(stack.idp.stats.parRequests, parBefore + 3);

  const countedBefore = await rateLimitedCount('auth');
  for (let i = 0; i < 5; i++) {
    const refused = await client.fetch('/auth/login');
    assert.equal(refused.status, 429);
    assert.deepEqual(await refused.json(), { error: 'rate_limited' });
    assert.equal(refused.headers.get('cache-control'), 'no-store');
    const retryAfter = refused.headers.get('retry-after');
    assert.match(retryAfter ?? '', /^\d+$/, 'Retry-After is whole seconds');
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter} is within the minute`);
    assert.equal(refused.headers.get('location'), null, 'no redirect to the provider');
    assert.equal(refused.headers.getSetCookie().length, 0, 'no transaction cookie');
  }
  assert.equal(stack.idp.stats.parRequests, parBefore + 3, 'the refused requests never reached the provider');
  assert.equal(await rateLimitedCount('auth'), countedBefore + 5, 'cloakroom_rate_limited_total{scope="auth"} counts each refusal');
});

test('/auth/callback shares the budget and is refused before any state check or token request', async () => {
  stack.configure({ RATE_LIMIT_AUTH: '2' });
  const client = stack.newBrowser();
  assert.equal((await client.fetch('/auth/login')).status, 302);
  // A forged callback within the budget is the ordinary 400.
  assert.equal((await client.fetch('/auth/callback?code=x&state=y')).status, 400);
  const tokenRequestsBefore = stack.idp.stats.tokenRequests.length;
  const refused = await client.fetch('/auth/callback?code=x&state=y');
  assert.equal(refused.status, 429);
  assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
  assert.equal((await client.fetch('/auth/login')).status, 429, 'login is refused too: one budget for both');
  assert.equal(stack.idp.stats.tokenRequests.length, tokenRequestsBefore);
});
