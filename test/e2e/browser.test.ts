/**
 * The demo page in headless Chromium against the production build: sign in at the
 * provider's real login page, call both APIs through the broker, sign out — and prove
 * that no token the provider issued ever reached the page: not in any response it
 * received from the broker, not in `document.cookie`, not in web storage.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Cookie, type Page, type Response } from 'playwright-core';
import { chromiumPath } from '../helpers/chromium.ts';
import { CLIENT_ID, startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const JWT = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+/;
const SESSION_COOKIE = /^cloakroom(\.\d+)?$/;
const STEP_TIMEOUT = 15_000;

interface Seen {
  url: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Records every response the context receives from the broker's origin, with all its
 * headers (Set-Cookie included) and its body where there is one (a redirect has none).
 */
function recordResponses(context: BrowserContext, origin: string): { settled(): Promise<Seen[]> } {
  const pending: Array<Promise<Seen>> = [];
  context.on('response', (response: Response) => {
    if (new URL(response.url()).origin !== origin) return;
    pending.push(
      (async () => {
        const headers = await response.allHeaders();
        let body = '';
        try {
          body = await response.text();
        } catch {
          // redirects and aborted loads carry no body
        }
        return { url: response.url(), status: response.status(), headers, body };
      })(),
    );
  });
  return { settled: () => Promise.all(pending) };
}

async function text(page: Page, testId: string): Promise<string> {
  return ((await page.getByTestId(testId).textContent({ timeout: STEP_TIMEOUT })) ?? '').trim();
}

/** Waits until the element shows `expected` (the page loads the session asynchronously). */
async function waitForText(page: Page, testId: string, expected: string | RegExp): Promise<void> {
  const locator = page.getByTestId(testId).filter({ hasText: expected });
  await locator.first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
}

async function signInAtProvider(page: Page, issuer: string): Promise<void> {
  await page.waitForURL((url) => url.origin === new URL(issuer).origin && url.pathname.startsWith('/interaction/'), { timeout: STEP_TIMEOUT });
  await page.fill('input[name="username"]', 'alice');
  await page.fill('input[name="password"]', 'alice-password');
  await page.click('button[type="submit"]');
}

function sessionCookies(cookies: Cookie[]): Cookie[] {
  return cookies.filter((c) => SESSION_COOKIE.test(c.name));
}

/** The demo page's API result: `GET <route> → <status>` and then the API's JSON. */
async function apiResult(page: Page, route: string): Promise<{ status: number; body: Record<string, unknown>; raw: string }> {
  await waitForText(page, 'api-result', `GET ${route} →`);
  const raw = await text(page, 'api-result');
  const [first, ...rest] = raw.split('\n');
  const status = Number(/→ (\d{3})/.exec(first ?? '')?.[1]);
  return { status, body: JSON.parse(rest.join('\n')) as Record<string, unknown>, raw };
}

describe('the demo page in Chromium', { skip: CHROMIUM ? false : 'no Chromium (install Debian chromium or set CHROMIUM_PATH)' }, () => {
  let stack: ProductionStack;
  let browser: Browser;

  before(async () => {
    [stack, browser] = await Promise.all([
      startProductionStack(),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
    ]);
  });

  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('signs in at the provider, calls both APIs, signs out — and the page never holds a token', async () => {
    const context = await browser.newContext();
    try {
      const recorder = recordResponses(context, stack.url);
      const page = await context.newPage();

      await page.goto(`${stack.url}/`);
      await waitForText(page, 'status', 'Signed out');

      await page.getByTestId('sign-in').click();
      await signInAtProvider(page, stack.idp.issuer);
      await page.waitForURL(`${stack.url}/`, { timeout: STEP_TIMEOUT });
      await waitForText(page, 'status', 'Signed in');
      assert.equal(await text(page, 'user-name'), 'Alice Example');

      mkdirSync('test-results', { recursive: true });
      await page.screenshot({ path: 'test-results/signed-in.png', fullPage: true });

      // Per-route tokens: each API sees a token for its own audience.
      await page.getByTestId('call-demo').click();
      const demo = await apiResult(page, '/api/demo');
      assert.equal(demo.status, 200, demo.raw);
      assert.equal(demo.body.audience, stack.demoAudience);
      assert.equal(demo.body.subject, 'user-alice');
      await page.getByTestId('call-reports').click();
      const reports = await apiResult(page, '/api/reports');
      assert.equal(reports.status, 200, reports.raw);
      assert.equal(reports.body.audience, stack.reportsAudience);

      // The session cookie: HttpOnly, Path=/, SameSite=Strict, host-only, not Secure on http.
      const cookies = sessionCookies(await context.cookies(stack.url));
      assert.ok(cookies.length > 0, 'a session cookie');
      for (const cookie of cookies) {
        assert.equal(cookie.httpOnly, true, `${cookie.name} httpOnly`);
        assert.equal(cookie.path, '/', `${cookie.name} path`);
        assert.equal(cookie.sameSite, 'Strict', `${cookie.name} sameSite`);
        assert.equal(cookie.domain, 'localhost', `${cookie.name} is host-only (no Domain attribute)`);
        assert.equal(cookie.secure, false, `${cookie.name} is not Secure on http`);
      }

      // What the page's JavaScript can read: no session cookie, no token.
      const documentCookie = await page.evaluate(() => document.cookie);
      assert.doesNotMatch(documentCookie, /(^|;\s*)cloakroom/, 'document.cookie shows the session cookie');
      const storage = await page.evaluate(() => {
        const dump = (s: Storage) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => s.key(i) as string).map((k) => [k, s.getItem(k)]));
        return JSON.stringify({ local: dump(localStorage), session: dump(sessionStorage) });
      });
      const pageText = await page.evaluate(() => document.documentElement.outerHTML);

      const tokens = stack.issued;
      assert.ok(tokens.some((t) => t.kind === 'access_token'), 'access tokens were issued');
      assert.ok(tokens.some((t) => t.kind === 'refresh_token'), 'refresh tokens were issued');
      assert.ok(tokens.some((t) => t.kind === 'id_token'), 'an ID token was issued');
      assert.ok(tokens.some((t) => t.grantType === 'refresh_token'), 'per-API tokens came from refreshes');

      const seen = await recorder.settled();
      assert.ok(seen.some((s) => s.url.includes('/auth/callback')), 'the callback was recorded');
      assert.ok(seen.some((s) => new URL(s.url).pathname === '/api/demo' && s.body.includes(stack.demoAudience)), 'the API answer was recorded');
      const surfaces: Array<[string, string]> = [
        ...seen.map((s): [string, string] => [`${s.status} ${s.url}`, `${JSON.stringify(s.headers)}\n${s.body}`]),
        ['document.cookie', documentCookie],
        ['web storage', storage],
        ['the page', pageText],
      ];
      for (const [where, content] of surfaces) {
        for (const token of tokens) assert.ok(!content.includes(token.value), `${where} holds a${token.kind === 'id_token' ? 'n' : ''} ${token.kind}`);
        assert.doesNotMatch(content, JWT, `${where} holds a JWT`);
      }

      // Sign out through the page's button, confirm at the provider, and land back signed out.
      const before = sessionCookies(await context.cookies(stack.url));
      const signOutStart = (await recorder.settled()).length;
      await page.getByTestId('sign-out').click();
      const atProvider = (url: URL) => url.origin === new URL(stack.idp.issuer).origin;
      // The provider sends the browser back to post_logout_redirect_uri with its `state`.
      const backHome = (url: URL) => url.origin === stack.url && url.pathname === '/';
      await page.waitForURL((url) => atProvider(url) || backHome(url), { timeout: STEP_TIMEOUT });
      if (atProvider(new URL(page.url()))) {
        await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      }
      await page.waitForURL(backHome, { timeout: STEP_TIMEOUT });
      await waitForText(page, 'status', 'Signed out');
      assert.equal(sessionCookies(await context.cookies(stack.url)).length, 0, 'the session cookie is gone');

      // RP-initiated logout names the client (`client_id`): no token of any kind travels
      // through the browser, the ID token included (AUDIT.md L10: browser history, the
      // provider's access logs).
      const logoutSeen = (await recorder.settled()).slice(signOutStart);
      const logoutRedirect = logoutSeen.find((s) => s.url === `${stack.url}/auth/logout`);
      assert.equal(logoutRedirect?.status, 303, 'the sign-out form posted to /auth/logout and was redirected');
      const endSession = new URL(logoutRedirect.headers.location ?? '');
      assert.ok(endSession.href.startsWith(`${stack.idp.issuer}/session/end?`), 'to the end_session_endpoint');
      assert.equal(endSession.searchParams.get('id_token_hint'), null);
      assert.equal(endSession.searchParams.get('client_id'), CLIENT_ID);
      for (const s of logoutSeen) {
        const content = `${s.url}\n${JSON.stringify(s.headers)}\n${s.body}`;
        for (const token of tokens) assert.ok(!content.includes(token.value), `${s.status} ${s.url} holds a${token.kind === 'id_token' ? 'n' : ''} ${token.kind}`);
      }

      // The cookie captured before sign-out is dead, even in a fresh browser.
      const replay = await browser.newContext();
      try {
        await replay.addCookies(before);
        const answer = await replay.request.get(`${stack.url}/auth/session`, { headers: { 'x-csrf': '1' } });
        assert.equal(answer.status(), 200);
        assert.deepEqual(await answer.json(), { authenticated: false });
      } finally {
        await replay.close();
      }
    } finally {
      await context.close();
    }
  });

  test('two tabs that start signing in before either finishes both succeed', async () => {
    const context = await browser.newContext();
    try {
      const [first, second] = [await context.newPage(), await context.newPage()];
      for (const page of [first, second]) {
        await page.goto(`${stack.url}/`);
        await waitForText(page, 'status', 'Signed out');
        await page.getByTestId('sign-in').click();
        await page.waitForURL((url) => url.pathname.startsWith('/interaction/'), { timeout: STEP_TIMEOUT });
      }
      for (const page of [first, second]) {
        await signInAtProvider(page, stack.idp.issuer);
        await page.waitForURL(`${stack.url}/`, { timeout: STEP_TIMEOUT });
        await waitForText(page, 'status', 'Signed in');
        assert.equal(await text(page, 'user-name'), 'Alice Example');
      }
      await first.reload();
      await waitForText(first, 'status', 'Signed in');
      await first.getByTestId('call-demo').click();
      assert.equal((await apiResult(first, '/api/demo')).status, 200);
    } finally {
      await context.close();
    }
  });
});
