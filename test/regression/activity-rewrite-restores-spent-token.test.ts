/**
 * What broke: two requests carrying the same cookie C1 (refresh token RT1), due for an
 * idle-activity rewrite. X refreshed (RT1 → RT2) and set C2; Y only recorded activity and
 * re-sealed C1 — still holding the spent RT1. When Y's answer arrived last, the browser
 * kept RT1, and once the grace window had passed every refresh answered
 * `session_expired` while `/auth/session` still said signed in. An activity rewrite now
 * writes the newest session known, and never a spent refresh token.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const ORDERS = 'https://orders.example/';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: { rotateRefreshTokens: true, resources: { [ORDERS]: { scope: 'orders:read', accessTokenTtl: 4 } } },
    env: {
      REFRESH_GRACE_PERIOD: '1',
      // Activity is written back at most every second (a tenth of the idle timeout).
      SESSION_IDLE_TIMEOUT: '10',
      BFF_ROUTES: JSON.stringify([
        { path: '/api/orders', upstream: up.url, resource: ORDERS, scopes: ['orders:read'] },
        // The sign-in's own token (60 s): still fresh, so a call here only records activity.
        { path: '/api/plain', upstream: up.url },
      ]),
    },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

/** The Cookie header a browser would send after these Set-Cookie values. */
function cookieAfter(setCookies: string[], before: string): string {
  const jar = new Map(before.split('; ').filter(Boolean).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  for (const line of setCookies) {
    const pair = line.split(';')[0];
    const name = pair.slice(0, pair.indexOf('='));
    if (/Max-Age=0/i.test(line)) jar.delete(name);
    else jar.set(name, pair.slice(pair.indexOf('=') + 1));
  }
  return [...jar].filter(([n]) => n.startsWith('cloakroom')).map(([n, v]) => `${n}=${v}`).join('; ');
}

const call = (path: string, cookie: string) =>
  fetch(new URL(path, stack.broker.url), { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });

for (const activityPath of ['/auth/session', '/api/plain/echo']) {
  test(`an activity rewrite by ${activityPath} after a refresh leaves the browser a live session`, async () => {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn('alice')).status, 303);
    assert.equal((await browser.api('/api/orders/echo')).status, 200);
    const c1 = cookieAfter([], browser.cookieHeader());
    await sleep(2_300); // the orders token is stale and activity is due

    // X refreshes; Y, carrying the same old cookie, answers last.
    const x = await call('/api/orders/echo', c1);
    assert.equal(x.status, 200);
    const y = await call(activityPath, c1);
    assert.equal(y.status, 200);
    const held = cookieAfter(y.headers.getSetCookie(), cookieAfter(x.headers.getSetCookie(), c1));

    await sleep(1_500); // past the 1 s grace window
    const later = await call('/api/orders/echo', held);
    assert.equal(later.status, 200, `the session lives on (got ${later.status})`);
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });
}
