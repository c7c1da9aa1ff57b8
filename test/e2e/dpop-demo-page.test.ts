/**
 * The demo page in Chromium with the DPoP-only API behind `/api/secure` (issue 12, item 5):
 * through `npm start`, the page shows which calls were DPoP-bound and what the API checked,
 * and never holds a token.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath } from '../helpers/chromium.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

const CHROMIUM = chromiumPath();
const STEP_TIMEOUT = 15_000;
const JWT = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+/;

async function shown(page: Page, testId: string, expected: string | RegExp): Promise<string> {
  const locator = page.getByTestId(testId).filter({ hasText: expected }).first();
  await locator.waitFor({ state: 'visible', timeout: STEP_TIMEOUT });
  return ((await locator.textContent()) ?? '').trim();
}

describe('the demo page shows DPoP-bound calls', { skip: CHROMIUM ? false : 'no Chromium (install Debian chromium or set CHROMIUM_PATH)' }, () => {
  let stack: ProductionStack;
  let browser: Browser;
  before(async () => {
    [stack, browser] = await Promise.all([
      startProductionStack({ npmStart: true, dpopRoute: true }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  test('the DPoP route is marked DPoP-bound with the key thumbprint and the upstream URL; the Bearer route is not', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${stack.url}/`);
      await page.getByTestId('sign-in').click();
      await page.waitForURL((url) => url.pathname.startsWith('/interaction/'), { timeout: STEP_TIMEOUT });
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', 'alice-password');
      await page.click('button[type="submit"]');
      await page.waitForURL(`${stack.url}/`, { timeout: STEP_TIMEOUT });

      await page.getByTestId('call-secure').click();
      const bound = await shown(page, 'dpop-bound', 'DPoP-bound');
      const seen = stack.dpopApi?.seen.filter((s) => s.outcome === 'accepted').at(-1);
      assert.ok(seen?.tokenJkt);
      assert.ok(bound.includes(seen.tokenJkt), bound);
      assert.ok(bound.includes(`${stack.dpopApi?.url}/`), bound);
      await shown(page, 'api-result', 'GET /api/secure → 200');

      await page.getByTestId('call-demo').click();
      await shown(page, 'api-result', 'GET /api/demo → 200');
      await shown(page, 'dpop-bound', 'a Bearer token');
      assert.doesNotMatch(await page.content(), JWT, 'a token on the page');
    } finally {
      await context.close();
    }
  });
});
