/**
 * What broke (AUDIT M3): the browser's request that refreshed never got its answer (the
 * user navigated away, an AbortController fired, the network dropped), so the browser
 * kept the cookie holding the refresh token the broker had just spent. The successor was
 * kept for REFRESH_GRACE_PERIOD only: a browser coming back later got 401
 * session_expired on every call, forever, while /auth/session still said signed in.
 * The session's refresh record now lets the immediate predecessor adopt the live tokens
 * however late, and /auth/session writes the newest session back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { callWith, sleep } from '../helpers/calls.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const GRACE_SECONDS = 1;
let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: { rotateRefreshTokens: true, accessTokenTtl: 4 },
    env: { REFRESH_GRACE_PERIOD: String(GRACE_SECONDS), BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url }]) },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('a refresh whose answer never reached the browser does not lose the session, 2× the grace period later', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const cookie = browser.cookieHeader();
  await sleep(2_300); // the 4 s access token is due (renewed at half its lifetime)

  // The browser's call refreshes, reaches the API, and is abandoned before any answer.
  const controller = new AbortController();
  const abandoned = callWith(stack.broker.url, '/api/up/hang', cookie, { signal: controller.signal }).catch(() => 'aborted');
  const seen = await up.waitFor((r) => r.url === '/hang', 5_000);
  assert.ok(seen.bearer, 'the API received the refreshed token');
  controller.abort();
  assert.equal(await abandoned, 'aborted');
  assert.equal(stack.idp.stats.refreshGrants, 1, 'the refresh happened at the provider');

  await sleep(2 * GRACE_SECONDS * 1000 + 300);
  const session = await callWith(stack.broker.url, '/auth/session', cookie);
  assert.equal(session.body.authenticated, true, '/auth/session reports what the proxy will do');
  assert.ok(session.newCookie, '/auth/session writes the newest session back');

  const back = await callWith(stack.broker.url, '/api/up/echo', cookie);
  assert.equal(back.status, 200, `the old cookie still works (got ${back.status} ${JSON.stringify(back.body)})`);
  assert.ok(back.newCookie, 'and gets the newest cookie');
  // The lost answer's access token is due again by now, so the live refresh token (the
  // lost answer's) was used once more — never the spent one, which the provider would
  // have answered with invalid_grant and a revoked grant.
  const refreshes = stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token');
  assert.deepEqual(refreshes.map((r) => r.ok), refreshes.map(() => true), 'every refresh request carried a live token');
  assert.equal(stack.idp.stats.grantsRevoked, 0);

  const next = await callWith(stack.broker.url, '/api/up/echo', back.newCookie as string);
  assert.equal(next.status, 200);
});
