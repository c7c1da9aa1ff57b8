/**
 * AUDIT.md M2, through the real production server (`next start`): a session's cookies
 * grew past what Node (16 KiB of headers) or a proxy (nginx: 8 KB a line) accepts — a
 * user with 150 groups and two APIs carried 10.4 KB — and every later request of the
 * browser to the origin failed with 431, /auth/logout included, for up to the 7 days of
 * the cookie's Max-Age. Now the whole family stays within SESSION_COOKIE_MAX_BYTES
 * (7168), a session that cannot fit is refused at sign-in, and a family left over from
 * before is rewritten within the budget or cleared.
 *
 * The server runs with Node's header limit raised, as `npm start` runs it, so that a
 * browser holding 20 KB of old cookies reaches the broker at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEMO_USERS, type DevUser } from '../../demo/idp.ts';
import { loadConfig } from '../../lib/config/load.ts';
import { seal } from '../../lib/session/codec.ts';
import type { Session } from '../../lib/session/session.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';

const BUDGET = 7168;
/** A user no cookie budget can hold: a 9,000-character display name. */
const HUGE: DevUser = {
  sub: 'user-huge',
  username: 'huge',
  password: 'huge-password',
  claims: { name: `Huge ${'Name-'.repeat(1800)}`, email: 'huge@example.com', email_verified: true },
};

let stack: ProductionStack;
before(async () => {
  stack = await startProductionStack({
    idp: { accessTokenTtl: 4, users: [...DEMO_USERS, HUGE] },
    env: { NODE_OPTIONS: '--max-http-header-size=65536' },
  });
});
after(() => stack?.close());

function family(cookieHeader: string): string[] {
  return cookieHeader.split('; ').filter((c) => /^cloakroom(\.\d+)?=/.test(c));
}

/** Bytes of the family in the Cookie header: `name=value; ` for every cookie. */
function familyBytes(cookieHeader: string): number {
  return family(cookieHeader).reduce((sum, c) => sum + Buffer.byteLength(c) + 2, 0);
}

function expiredNames(response: Response): string[] {
  return response.headers
    .getSetCookie()
    .filter((h) => /; Max-Age=0(;|$)/.test(h))
    .map((h) => h.slice(0, h.indexOf('=')));
}

describe('the session cookie family within SESSION_COOKIE_MAX_BYTES, through next start', () => {
  test('150 group claims and two APIs, refreshed: at most 7168 bytes of cookies, and every call works', async () => {
    const browser = new BrowserClient(stack.url);
    assert.equal((await browser.signIn('carol')).status, 303);
    assert.ok(familyBytes(browser.cookieHeader()) <= BUDGET);
    for (const round of [1, 2]) {
      for (const path of ['/api/demo/x', '/api/reports/x']) {
        const response = await browser.api(path);
        assert.equal(response.status, 200, `round ${round} ${path}: ${await response.text()}`);
        const bytes = familyBytes(browser.cookieHeader());
        assert.ok(bytes <= BUDGET, `round ${round} ${path}: ${bytes} bytes of cookies`);
      }
      if (round === 1) await new Promise((resolve) => setTimeout(resolve, 2_300)); // tokens renewed in round 2
    }
    const session = await browser.api('/auth/session');
    assert.equal(((await session.json()) as { authenticated: boolean }).authenticated, true);
  });

  test('a session that cannot fit is refused at sign-in: 400 naming SESSION_STORAGE=server, no session cookie', async () => {
    const browser = new BrowserClient(stack.url);
    const callback = await browser.signIn('huge');
    assert.equal(callback.status, 400);
    assert.equal(callback.headers.get('location'), null);
    const body = (await callback.json()) as { error: string; message: string };
    assert.equal(body.error, 'invalid_request');
    assert.match(body.message, /SESSION_STORAGE=server/);
    assert.match(body.message, /SESSION_COOKIE_MAX_BYTES/);
    assert.deepEqual(
      callback.headers.getSetCookie().filter((h) => /^cloakroom(\.\d+)?=[^;]/.test(h)),
      [],
      'no session cookie written',
    );
    assert.deepEqual(family(browser.cookieHeader()), []);
  });

  test('20 KB of unreadable old cookies: every name expired, on /auth/session and on /api', async () => {
    const old = Array.from({ length: 6 }, (_, i) => `cloakroom.${i}=${'A'.repeat(3400)}`).join('; ');
    assert.ok(Buffer.byteLength(old) > 20_000);
    for (const path of ['/auth/session', '/api/demo/x']) {
      const response = await fetch(`${stack.url}${path}`, { headers: { cookie: old, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
      assert.ok(response.status === 200 || response.status === 401, `${path}: ${response.status}`);
      await response.text();
      const expired = expiredNames(response);
      for (let i = 0; i < 6; i++) assert.ok(expired.includes(`cloakroom.${i}`), `${path}: cloakroom.${i} expired`);
    }
  });

  test('a readable session of 20 KB from before the budget is rewritten within it and keeps working', async () => {
    const browser = new BrowserClient(stack.url);
    assert.equal((await browser.signIn('alice')).status, 303);
    const config = loadConfig({
      APP_BASE_URL: stack.url,
      OIDC_ISSUER: stack.idp.issuer,
      OIDC_ALLOW_INSECURE_HTTP: 'true',
      OIDC_CLIENT_ID: 'x',
      OIDC_CLIENT_SECRET: 'x',
      SESSION_SECRETS: stack.sessionSecret,
      BFF_ROUTES: '[]',
    });
    const now = Date.now();
    // What the broker sealed before: the whole ID token (here 15 KB of claims) inside.
    const legacy: Session = {
      v: 1,
      id: randomBytes(18).toString('base64url'),
      iss: stack.idp.issuer,
      sub: 'user-alice',
      user: { sub: 'user-alice', name: 'Alice Example' },
      idToken: randomBytes(11_000).toString('base64url'),
      refreshToken: 'rt-unused',
      tokens: {},
      createdAt: now,
      touchedAt: now,
    };
    const sealed = await seal(legacy, config.session, 3600);
    const chunks = Math.ceil(sealed.length / 3800);
    const cookie = Array.from({ length: chunks }, (_, i) => `cloakroom.${i}=${sealed.slice(i * 3800, (i + 1) * 3800)}`).join('; ');
    assert.ok(Buffer.byteLength(cookie) > 20_000);

    const response = await fetch(`${stack.url}/auth/session`, { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { authenticated: boolean }).authenticated, true);
    const rewritten = new BrowserClient(stack.url);
    const headers = new Headers();
    for (const part of cookie.split('; ')) headers.append('set-cookie', `${part}; Path=/`);
    rewritten.jar.store(new URL(stack.url), new Response(null, { headers }));
    rewritten.jar.store(new URL(stack.url), response);
    const bytes = familyBytes(rewritten.cookieHeader());
    assert.ok(bytes <= BUDGET, `after the rewrite the browser holds ${bytes} bytes of cookies`);
    const again = await rewritten.api('/auth/session');
    assert.equal(((await again.json()) as { authenticated: boolean }).authenticated, true);
  });
});
