/**
 * What broke (issue 13, point 7): with a provider that does not rotate refresh tokens
 * and short access tokens, a call between the renewal point and the end of the grace
 * window answered 503 idp_unavailable without ever reaching the provider: the recorded
 * outcome (same refresh token, an access token itself due for renewal) was adopted
 * again and again until the step limit. The session's record now offers its tokens
 * only while they are fresh; a due token is refreshed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { callWith, sleep } from '../helpers/calls.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    // 4 s access tokens are due 2 s after issue, well inside the default 30 s grace window.
    idp: { rotateRefreshTokens: false, accessTokenTtl: 4 },
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url }]) },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('a provider that keeps the refresh token: the second refresh within the grace window reaches the provider', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const signedIn = browser.cookieHeader();
  await sleep(2_300);
  const first = await callWith(stack.broker.url, '/api/up/first', signedIn);
  assert.equal(first.status, 200);
  assert.ok(first.newCookie);
  assert.equal(stack.idp.stats.refreshGrants, 1);

  await sleep(2_300); // the refreshed token is due too; its outcome is 2.3 s old
  const second = await callWith(stack.broker.url, '/api/up/second', first.newCookie as string);
  assert.equal(second.status, 200, `got ${second.status} ${JSON.stringify(second.body)}`);
  assert.equal(stack.idp.stats.refreshGrants, 2, 'refreshed, not a stale outcome adopted');

  const original = await callWith(stack.broker.url, '/api/up/original', signedIn);
  assert.equal(original.status, 200, 'the sign-in cookie (same refresh token) adopts the fresh token');
  assert.equal(stack.idp.stats.refreshGrants, 2);
});
