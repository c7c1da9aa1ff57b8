/**
 * AUDIT L12: the broker's own pages (the demo page, the callback's error page, /auth/*)
 * carried no Strict-Transport-Security, no Content-Security-Policy, no frame-ancestors
 * and no Referrer-Policy. They now do, through the production server, and the demo page
 * still works under the policy in Chromium — sign-in, both APIs, sign-out — without a
 * single CSP violation. The demo page's policy is nonce-based: markup injected into it
 * cannot run script. /api/ answers are the APIs' own and get none of these.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath } from '../helpers/chromium.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STEP_TIMEOUT = 15_000;

let stack: ProductionStack;
before(async () => {
  stack = await startProductionStack();
});
after(() => stack?.close());

function assertSecurityHeaders(headers: Headers, where: string): void {
  assert.equal(headers.get('strict-transport-security'), 'max-age=63072000', where);
  const csp = headers.get('content-security-policy') ?? '';
  for (const directive of ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "connect-src 'self'"]) {
    assert.ok(csp.split('; ').includes(directive), `${where}: ${directive} in ${csp}`);
  }
  assert.equal(headers.get('referrer-policy'), 'same-origin', where);
  assert.equal(headers.get('x-content-type-options'), 'nosniff', where);
  assert.equal(headers.get('x-frame-options'), 'DENY', where);
}

describe('security headers through next start', () => {
  test('the demo page, the callback error page and /auth/session carry them', async () => {
    const page = await fetch(`${stack.url}/`);
    assert.equal(page.status, 200);
    assertSecurityHeaders(page.headers, 'GET /');

    const callback = await fetch(`${stack.url}/auth/callback?state=unknown&code=x`, { headers: { Accept: 'text/html' } });
    assert.equal(callback.status, 400);
    assert.match(callback.headers.get('content-type') ?? '', /^text\/html/);
    assertSecurityHeaders(callback.headers, 'the callback error page');

    const session = await fetch(`${stack.url}/auth/session`, { headers: { 'X-CSRF': '1' } });
    assertSecurityHeaders(session.headers, 'GET /auth/session');
  });

  test('the demo page\'s policy is strict: a fresh nonce per answer, on every script, and no unsafe-inline', async () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const page = await fetch(`${stack.url}/`);
      const csp = page.headers.get('content-security-policy') ?? '';
      const scriptSrc = csp.split('; ').find((d) => d.startsWith('script-src ')) ?? '';
      const nonce = /^script-src 'nonce-([A-Za-z0-9+/=]{22,})' 'strict-dynamic'$/.exec(scriptSrc)?.[1];
      assert.ok(nonce, `a nonce-based script-src without 'unsafe-inline': ${csp}`);
      nonces.add(nonce);
      const html = await page.text();
      const scripts = html.match(/<script\b[^>]*>/g) ?? [];
      assert.ok(scripts.length > 0);
      for (const tag of scripts) assert.ok(tag.includes(`nonce="${nonce}"`), tag);
    }
    assert.equal(nonces.size, 2, 'each answer has its own nonce');
  });

  test('/api/ answers are the API\'s: no page policy is added', async () => {
    for (const path of ['/api/demo/whoami', '/api']) {
      const answer = await fetch(`${stack.url}${path}`, { headers: { 'X-CSRF': '1' } });
      assert.equal(answer.headers.get('content-security-policy'), null, path);
      assert.equal(answer.headers.get('strict-transport-security'), null, path);
    }
  });
});

describe('the demo page under its policy in Chromium', { skip: CHROMIUM ? false : 'no Chromium (install Debian chromium or set CHROMIUM_PATH)' }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });
  after(() => browser?.close());

  async function waitForText(page: Page, testId: string, expected: string | RegExp): Promise<void> {
    await page.getByTestId(testId).filter({ hasText: expected }).first().waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  }

  test('signs in, calls both APIs and signs out without one CSP violation', async () => {
    const context = await browser.newContext();
    const violations: string[] = [];
    // Every violation on the broker's pages, as the page itself sees it (W3C CSP 3 §5.3).
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`csp-violation ${e.violatedDirective} ${e.blockedURI}`));
    });
    try {
      const page = await context.newPage();
      page.on('console', (message) => {
        const text = message.text();
        if (/csp-violation|Content Security Policy/i.test(text) && new URL(page.url()).origin === stack.url) violations.push(text);
      });
      await page.goto(`${stack.url}/`);
      await waitForText(page, 'status', 'Signed out');

      await page.getByTestId('sign-in').click();
      await page.waitForURL((url) => url.origin === new URL(stack.idp.issuer).origin && url.pathname.startsWith('/interaction/'), { timeout: STEP_TIMEOUT });
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', 'alice-password');
      await page.click('button[type="submit"]');
      await page.waitForURL(`${stack.url}/`, { timeout: STEP_TIMEOUT });
      await waitForText(page, 'status', 'Signed in');

      await page.getByTestId('call-demo').click();
      await waitForText(page, 'api-result', 'GET /api/demo → 200');
      await page.getByTestId('call-reports').click();
      await waitForText(page, 'api-result', 'GET /api/reports → 200');

      await page.getByTestId('sign-out').click();
      const atProvider = (url: URL) => url.origin === new URL(stack.idp.issuer).origin;
      const backHome = (url: URL) => url.origin === stack.url && url.pathname === '/';
      await page.waitForURL((url) => atProvider(url) || backHome(url), { timeout: STEP_TIMEOUT });
      if (atProvider(new URL(page.url()))) await page.getByRole('button', { name: 'Yes, sign me out' }).click();
      await page.waitForURL(backHome, { timeout: STEP_TIMEOUT });
      await waitForText(page, 'status', 'Signed out');

      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  test('markup injected into the demo page cannot run script', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${stack.url}/`);
      await waitForText(page, 'status', 'Signed out');
      const refused = page.waitForEvent('console', { predicate: (m) => /Content Security Policy/i.test(m.text()), timeout: STEP_TIMEOUT });
      // What an HTML injection would plant: an inline event handler (no nonce). Both
      // handlers: whether an empty data: image loads or errors differs between Chromium
      // versions, and the refusal is reported only when one of them is dispatched.
      await page.evaluate(() => {
        document.body.insertAdjacentHTML('beforeend', '<img src="data:," onload="document.title = \'injected\'" onerror="document.title = \'injected\'">');
      });
      assert.match((await refused).text(), /script-src/);
      assert.notEqual(await page.title(), 'injected');
    } finally {
      await context.close();
    }
  });

  test('a page of another origin cannot frame the broker', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // The provider's origin stands in for any other site.
      await page.goto(`${stack.idp.issuer}/.well-known/openid-configuration`);
      const framed = page.waitForEvent('console', { predicate: (m) => /frame-ancestors|Refused to display/i.test(m.text()), timeout: STEP_TIMEOUT });
      await page.evaluate((src) => {
        const frame = document.createElement('iframe');
        frame.src = src;
        document.body.append(frame);
      }, `${stack.url}/`);
      assert.match((await framed).text(), /frame-ancestors 'none'|X-Frame-Options/);
    } finally {
      await context.close();
    }
  });
});
