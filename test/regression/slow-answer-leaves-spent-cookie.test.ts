/**
 * What broke: two API calls at once on a page whose tokens are stale, for two
 * resources. Call A refreshes for its resource (refresh token 0 → 1); call B, which
 * joined A's refresh, then refreshes for its own (1 → 2). When A's API is slow, A's
 * answer arrives last and used to set the cookie holding refresh token 1 — already
 * spent. Once the grace window had passed, the browser's next call was refused with
 * `session_expired`: a lost session. Every answer of a request that refreshed now
 * carries the newest cookie known when the API answered.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const SLOW = 'https://slow.example/';
const FAST = 'https://fast.example/';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: {
      rotateRefreshTokens: true,
      resources: { [SLOW]: { scope: 'slow:read', accessTokenTtl: 4 }, [FAST]: { scope: 'fast:read', accessTokenTtl: 4 } },
    },
    env: {
      REFRESH_GRACE_PERIOD: '1',
      BFF_ROUTES: JSON.stringify([
        { path: '/api/slow', upstream: up.url, resource: SLOW, scopes: ['slow:read'] },
        { path: '/api/fast', upstream: up.url, resource: FAST, scopes: ['fast:read'] },
      ]),
    },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('a slow answer that arrives last still leaves the browser a live session', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  // Obtain both resources' tokens, then let both go stale (renewed at half of 4 s).
  assert.equal((await browser.api('/api/slow/echo')).status, 200);
  assert.equal((await browser.api('/api/fast/echo')).status, 200);
  await sleep(2_300);

  const grantsBefore = stack.idp.stats.refreshGrants;
  // A starts first and its API answers after 800 ms; B follows and answers at once.
  const slow = browser.api('/api/slow/slow?ms=800');
  await sleep(20);
  const fast = await browser.api('/api/fast/echo');
  assert.equal(fast.status, 200);
  const slowAnswer = await slow;
  assert.equal(slowAnswer.status, 200);
  assert.equal(stack.idp.stats.refreshGrants - grantsBefore, 2, 'one refresh per resource');
  // The browser processed the slow answer last: its cookie is what it holds now.
  assert.ok(slowAnswer.headers.getSetCookie().some((c) => c.startsWith('cloakroom')), 'the slow answer sets a cookie');

  await sleep(1_500); // past the 1 s grace window: no successor can be adopted any more
  const later = await browser.api('/api/fast/echo');
  assert.equal(later.status, 200, `the session lives on (got ${later.status})`);
  assert.equal(stack.idp.stats.grantsRevoked, 0);
});
