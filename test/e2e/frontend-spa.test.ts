/**
 * The example SPA (examples/spa: Vite + React, only cloakroom-client) built by Vite and
 * fronted from its static build by the production server (`npm start`,
 * BFF_FRONTEND_DIR, BFF_FRONTEND_AUTH=required), in headless Chromium against the real
 * development provider and the demo API:
 * - a session-gated deep link sends the browser to sign in and lands back on it;
 * - API calls through brokerFetch carry the token server-side only;
 * - a session ended mid-use (/ops/revoke) sends the page to sign in exactly once, for
 *   three calls failing together, and the POST among them is never sent again;
 * - a logout in one tab signs the other tab out;
 * - no token in any response the page received, its cookies or its storage; the strict
 *   CSP blocks nothing the app needs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { chromiumPath } from '../helpers/chromium.ts';
import { buildExampleSpa } from '../helpers/example-spa.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { rawRequest } from '../helpers/raw-http.ts';

const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const JWT = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+/;
const STEP = 15_000;
const OPS_TOKEN = randomBytes(32).toString('base64url');
const NAVIGATE: Array<[string, string]> = [['Accept', 'text/html'], ['Sec-Fetch-Mode', 'navigate']];

async function waitForText(page: Page, testId: string, expected: string | RegExp): Promise<void> {
  await page.getByTestId(testId).filter({ hasText: expected }).first().waitFor({ state: 'visible', timeout: STEP });
}

const atProviderLogin = (issuer: string) => (url: URL) => url.origin === new URL(issuer).origin && url.pathname.startsWith('/interaction/');

async function signInAtProvider(page: Page, issuer: string): Promise<void> {
  await page.waitForURL(atProviderLogin(issuer), { timeout: STEP });
  await page.fill('input[name="username"]', 'alice');
  await page.fill('input[name="password"]', 'alice-password');
  await page.click('button[type="submit"]');
}

/** Every navigation of the context to the broker's /auth/login, and every CSP refusal it logged. */
function watch(context: BrowserContext, origin: string) {
  const logins: string[] = [];
  const cspViolations: string[] = [];
  const bodies: Array<Promise<string>> = [];
  const posts: string[] = [];
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin === origin && url.pathname === '/auth/login' && request.isNavigationRequest()) logins.push(url.search);
    if (url.origin === origin && request.method() === 'POST' && url.pathname.startsWith('/api/')) posts.push(url.pathname);
  });
  context.on('response', (response) => {
    if (new URL(response.url()).origin !== origin) return;
    bodies.push(
      (async () => {
        const headers = JSON.stringify(await response.allHeaders());
        const body = await response.text().catch(() => '');
        return `${response.status()} ${response.url()}\n${headers}\n${body}`;
      })(),
    );
  });
  context.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
  return { logins, cspViolations, posts, responses: () => Promise.all(bodies) };
}

describe('the example SPA from its static build, in Chromium', { skip: CHROMIUM ? false : 'no Chromium (install Debian chromium or set CHROMIUM_PATH)' }, () => {
  let stack: ProductionStack;
  let browser: Browser;
  let build: { dir: string; remove(): void };

  before(async () => {
    build = buildExampleSpa();
    [stack, browser] = await Promise.all([
      startProductionStack({ npmStart: true, env: { BFF_FRONTEND_DIR: build.dir, BFF_FRONTEND_AUTH: 'required', OPS_TOKEN } }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    build?.remove();
  });

  test('the gate: a navigation without a session is sent to sign in with returnTo; assets and fetches are not', async () => {
    const gated = await rawRequest(stack.url, { path: '/orders/42?tab=items', headers: NAVIGATE });
    assert.equal(gated.status, 302);
    assert.equal(gated.headers.location, '/auth/login?returnTo=%2Forders%2F42%3Ftab%3Ditems');
    assert.equal(gated.headers['cache-control'], 'no-store');
    assert.match(String(gated.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal((await rawRequest(stack.url, { path: '/', headers: NAVIGATE })).headers.location, '/auth/login?returnTo=%2F');
    // A returnTo the login would refuse is not built: an unsafe path becomes `/`.
    assert.equal((await rawRequest(stack.url, { path: '/%2e%2e//evil.example', headers: NAVIGATE })).status, 400);
    const asset = readdirSync(`${build.dir}/assets`).find((name) => name.endsWith('.js'));
    const script = await rawRequest(stack.url, { path: `/assets/${asset}`, headers: [['Accept', '*/*'], ['Sec-Fetch-Mode', 'cors'], ['Sec-Fetch-Dest', 'script']] });
    assert.equal(script.status, 200, 'assets are not gated');
    assert.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal((await rawRequest(stack.url, { path: '/favicon.svg' })).status, 200);
    // A forged or dead cookie is no session: sent to sign in, and the cookie cleared.
    const forged = await rawRequest(stack.url, { path: '/orders/42', headers: [...NAVIGATE, ['Cookie', 'cloakroom=Fe26.2**forged']] });
    assert.equal(forged.status, 302);
    assert.ok(String(forged.headers['set-cookie'] ?? '').includes('cloakroom='), 'the dead cookie is cleared');
  });

  test('deep link → sign in → back on the deep link; brokerFetch calls the API; a 401 mid-use signs in once; no token anywhere', async () => {
    const context = await browser.newContext();
    try {
      const seen = watch(context, stack.url);
      const page = await context.newPage();
      await page.goto(`${stack.url}/orders/42?tab=items`);
      await signInAtProvider(page, stack.idp.issuer);
      await page.waitForURL(`${stack.url}/orders/42?tab=items`, { timeout: STEP });
      await waitForText(page, 'session', 'Signed in as Alice Example');
      await waitForText(page, 'order-status', '200');
      assert.equal(await page.getByTestId('order-path').textContent(), '/orders/42');
      assert.equal(await page.getByTestId('order-subject').textContent(), 'user-alice');
      assert.deepEqual(seen.logins, ['?returnTo=%2Forders%2F42%3Ftab%3Ditems'], 'one sign-in, with the deep link as returnTo');

      // Cookies: the session's are HttpOnly; the page's JavaScript sees none of them.
      const cookies = (await context.cookies(stack.url)).filter((c) => c.name.startsWith('cloakroom'));
      assert.ok(cookies.length > 0);
      for (const cookie of cookies) assert.equal(cookie.httpOnly, true, cookie.name);
      assert.doesNotMatch(await page.evaluate(() => document.cookie), /cloakroom/);

      // The session ends mid-use (an operator's emergency switch): the next calls — three
      // at once, one a POST — send the browser to sign in exactly once, and nothing is replayed.
      const revoked = await fetch(`${stack.url}/ops/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OPS_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sub: 'user-alice' }),
      });
      assert.equal(revoked.status, 200);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await page.getByTestId('save-note').click();
      // The provider still knows Alice: it may send her straight back, or ask again.
      await page.waitForURL((url) => atProviderLogin(stack.idp.issuer)(url) || (url.origin === stack.url && url.pathname === '/orders/42' && seen.logins.length === 2), { timeout: STEP });
      if (atProviderLogin(stack.idp.issuer)(new URL(page.url()))) await signInAtProvider(page, stack.idp.issuer);
      await page.waitForURL(`${stack.url}/orders/42?tab=items`, { timeout: STEP });
      await waitForText(page, 'order-status', '200');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(seen.logins.length, 2, `sign-in navigations: ${JSON.stringify(seen.logins)} (one at the deep link, exactly one for the 401s)`);
      assert.equal(seen.logins[1], '?returnTo=%2Forders%2F42%3Ftab%3Ditems');
      assert.deepEqual(seen.posts, ['/api/demo/orders/42/notes'], 'the POST that met the 401 was sent once and never replayed');

      // Nothing the provider issued reached the page: responses, cookies, storage, DOM.
      const storage = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));
      const dom = await page.evaluate(() => document.documentElement.outerHTML);
      const surfaces = [...(await seen.responses()), storage, dom, await page.evaluate(() => document.cookie)];
      assert.ok(stack.issued.some((t) => t.kind === 'access_token'));
      for (const surface of surfaces) {
        for (const token of stack.issued) assert.ok(!surface.includes(token.value), `a ${token.kind} reached the page: ${surface.slice(0, 120)}`);
        assert.doesNotMatch(surface, JWT);
      }
      assert.deepEqual(seen.cspViolations, [], 'the strict CSP refused nothing the app needs');
    } finally {
      await context.close();
    }
  });

  test('a logout in one tab signs out the other', async () => {
    const context = await browser.newContext();
    try {
      const first = await context.newPage();
      await first.goto(`${stack.url}/orders/7`);
      await signInAtProvider(first, stack.idp.issuer);
      await first.waitForURL(`${stack.url}/orders/7`, { timeout: STEP });
      await waitForText(first, 'session', 'Signed in');
      const second = await context.newPage();
      await second.goto(`${stack.url}/orders/8`);
      await waitForText(second, 'session', 'Signed in');
      await waitForText(second, 'order-status', '200');

      await first.getByTestId('logout').click();
      // The other tab learns it at once (BroadcastChannel), without a reload.
      await waitForText(second, 'session', 'Signed out');
      assert.equal(second.url(), `${stack.url}/orders/8`);
      assert.equal(await second.getByTestId('order-status').count(), 0, 'the order is no longer shown');
      // The first tab goes on to the provider's end-session page; the cookie is gone.
      await first.waitForURL((url) => url.origin === new URL(stack.idp.issuer).origin, { timeout: STEP });
      assert.equal((await context.cookies(stack.url)).filter((c) => c.name.startsWith('cloakroom')).length, 0);
      // And the second tab's next call is refused: the session is really over, not just hidden.
      const status = await second.evaluate(async () => (await fetch('/api/demo/orders/8', { headers: { 'X-CSRF': '1' } })).status);
      assert.equal(status, 401);
    } finally {
      await context.close();
    }
  });
});
