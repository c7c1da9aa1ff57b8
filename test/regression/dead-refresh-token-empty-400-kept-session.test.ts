/**
 * Issue 13, point 2: a provider (glewlwyd) answers a dead refresh token with HTTP 400 and
 * an empty body instead of `{"error": "invalid_grant"}`. The broker treated that as an
 * outage: `/auth/session` kept saying signed in, every API call answered 503 and sent the
 * dead token to the provider again, forever. Any 4xx other than 429 means the grant is
 * gone: 401 session_expired, the cookie cleared, the token never sent again.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sessionOf, sleep, unsealSession } from '../helpers/core.ts';
import { signedIn, UNTIL_STALE_MS } from '../helpers/quirk-contract.ts';
import { startQuirkStack, type QuirkStack } from '../helpers/quirk-provider.ts';

let stack: QuirkStack;
before(async () => {
  stack = await startQuirkStack({ quirks: { deadRefreshToken: 'empty_400' } });
});
after(() => stack?.close());

test('an empty 400 for a dead refresh token ends the session once, and the token is never sent again', async () => {
  const browser = await signedIn(stack);
  const refreshToken = (await unsealSession(browser.cookieHeader()))?.refreshToken as string;
  await (await stack.idp.provider.RefreshToken.find(refreshToken))?.destroy();
  await sleep(UNTIL_STALE_MS);
  stack.idp.resetStats();

  const first = await browser.api('/api/echo/x');
  assert.equal(first.status, 401);
  assert.equal(((await first.json()) as { error: string }).error, 'session_expired');
  assert.deepEqual(await sessionOf(browser), { authenticated: false });
  for (let i = 0; i < 3; i++) assert.equal((await browser.api('/api/echo/x')).status, 401);
  const refreshes = stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token');
  assert.equal(refreshes.length, 1, 'the dead refresh token reached the provider once');
});
