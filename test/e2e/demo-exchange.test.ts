/**
 * The demo page shows which calls used an exchanged token (issue 12, item 5): in headless
 * Chromium against the production build, a route with `"exchange"` next to a plain one.
 * The page says, from what the API saw, that the orders API's token came from a token
 * exchange for its audience and scope, and the plain API's from the sign-in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startDemoApi, type DemoApi } from '../../demo/api.ts';
import { chromiumPath } from '../helpers/chromium.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

const CHROMIUM = chromiumPath();
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ORDERS = 'urn:cloakroom:orders';
const STEP = 15_000;

describe('the demo page shows exchanged calls', { skip: CHROMIUM ? false : 'no Chromium (install Debian chromium or set CHROMIUM_PATH)' }, () => {
  let stack: ProductionStack;
  let browser: Browser;
  let orders: DemoApi;
  before(async () => {
    [stack, browser] = await Promise.all([
      startProductionStack({
        npmStart: true,
        idp: { exchangeAudiences: { [ORDERS]: { scope: 'orders:read orders:write' } } },
        extraRoutes: async (idp) => {
          orders = await startDemoApi({ port: 0, issuer: idp.issuer, audience: ORDERS, name: 'orders' });
          return [{ path: '/api/orders', upstream: orders.url, auth: 'required', methods: ['GET'], exchange: { audience: ORDERS, scope: 'orders:read' } }];
        },
      }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    await orders?.close();
  });

  test('signs in, calls the exchanged and the plain API, and the page tells them apart', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${stack.url}/`);
      await page.getByTestId('sign-in').click();
      await page.waitForURL((url) => url.pathname.startsWith('/interaction/'), { timeout: STEP });
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', 'alice-password');
      await page.click('button[type="submit"]');
      await page.waitForURL(`${stack.url}/`, { timeout: STEP });
      await page.getByTestId('status').filter({ hasText: 'Signed in' }).waitFor({ timeout: STEP });

      await page.getByTestId('call-orders').click();
      await page.getByTestId('api-result').filter({ hasText: 'GET /api/orders → 200' }).waitFor({ timeout: STEP });
      const summary = (await page.getByTestId('token-summary').textContent()) ?? '';
      assert.match(summary, /urn:cloakroom:orders/);
      assert.match(summary, /Scopesorders:read(?!\s*orders:write)/);
      assert.match(await page.getByTestId('token-obtained-by').textContent() ?? '', /token exchange \(RFC 8693\)/);

      await page.getByTestId('call-demo').click();
      await page.getByTestId('api-result').filter({ hasText: 'GET /api/demo → 200' }).waitFor({ timeout: STEP });
      assert.match(await page.getByTestId('token-obtained-by').textContent() ?? '', /the sign-in/);
    } finally {
      await context.close();
    }
  });
});
