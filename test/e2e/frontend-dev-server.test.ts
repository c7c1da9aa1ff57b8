/**
 * The example SPA through its own dev server (`vite`, BFF_FRONTEND_UPSTREAM) behind the
 * production server (`npm start`), in headless Chromium: the gated deep link and
 * brokerFetch work as with the build; the dev server's hot-reload WebSocket goes through
 * the broker (never straight to the dev server's port), an edited component updates the
 * page without a reload; the broker's cookies never reach the dev server; a foreign
 * Origin cannot open the dev server's WebSocket through the broker.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath } from '../helpers/chromium.ts';
import { startExampleDevServer, type ExampleDevServer } from '../helpers/example-spa.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

const CHROMIUM = chromiumPath();
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STEP = 20_000;
const LOG = join(tmpdir(), `cloakroom-dev-requests-${process.pid}.ndjson`);

async function waitForText(page: Page, testId: string, expected: string | RegExp): Promise<void> {
  await page.getByTestId(testId).filter({ hasText: expected }).first().waitFor({ state: 'visible', timeout: STEP });
}

/** The status line a WebSocket handshake through the broker gets, with the given Origin. */
function handshakeStatus(port: number, origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path: '/',
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': 'vite-hmr', origin },
    });
    req.once('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.once('upgrade', (response, socket) => {
      socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
}

describe('the example SPA through its dev server, with hot reload through the broker', { skip: CHROMIUM ? false : 'no Chromium (install Debian chromium or set CHROMIUM_PATH)' }, () => {
  let dev: ExampleDevServer;
  let stack: ProductionStack;
  let browser: Browser;

  before(async () => {
    dev = await startExampleDevServer({ recordRequestsTo: LOG });
    [stack, browser] = await Promise.all([
      startProductionStack({
        npmStart: true,
        env: {
          BFF_FRONTEND_UPSTREAM: dev.url,
          BFF_FRONTEND_AUTH: 'required',
          // The React plugin's dev server injects an inline refresh preamble (README).
          BFF_FRONTEND_CSP: "script-src 'unsafe-inline'",
        },
      }),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    await dev?.close();
    if (existsSync(LOG)) rmSync(LOG);
  });

  test('sign in from a deep link, call the API, edit a component: the page updates in place', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const bodies: Array<Promise<string>> = [];
      context.on('response', (response) => {
        if (new URL(response.url()).origin === stack.url) bodies.push(response.text().catch(() => '').then(async (body) => `${JSON.stringify(await response.allHeaders())}\n${body}`));
      });
      const sockets: string[] = [];
      page.on('websocket', (socket) => sockets.push(socket.url()));
      await page.goto(`${stack.url}/orders/42`);
      await page.waitForURL((url) => url.pathname.startsWith('/interaction/'), { timeout: STEP });
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', 'alice-password');
      await page.click('button[type="submit"]');
      await page.waitForURL(`${stack.url}/orders/42`, { timeout: STEP });
      await waitForText(page, 'session', 'Signed in as Alice Example');
      await waitForText(page, 'order-status', '200');
      assert.equal(await page.getByTestId('order-path').textContent(), '/orders/42');
      await waitForText(page, 'banner', /^Orders$/);

      // Hot reload: the dev server's socket is the broker's origin, never the dev port.
      const deadline = Date.now() + STEP;
      while (sockets.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(sockets.length > 0, 'the page opened the hot-reload WebSocket');
      for (const url of sockets) assert.equal(new URL(url).port, String(stack.port), `${url} goes through the broker`);

      await page.evaluate(() => Object.assign(window, { notReloaded: true }));
      const banner = join(dev.root, 'src', 'Banner.jsx');
      writeFileSync(banner, readFileSync(banner, 'utf8').replace('>Orders<', '>Orders, hot<'));
      await waitForText(page, 'banner', 'Orders, hot');
      assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'updated in place, not reloaded');
      await waitForText(page, 'session', 'Signed in as Alice Example');
      assert.equal(page.url(), `${stack.url}/orders/42`);

      // A quiet socket stays open (hot reload waits for the next edit): past the proxy's
      // 10 s connect timeout, a second edit still arrives over the same socket.
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      writeFileSync(banner, readFileSync(banner, 'utf8').replace('>Orders, hot<', '>Orders, hotter<'));
      await waitForText(page, 'banner', 'Orders, hotter');
      assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'still updated in place');
      assert.equal(sockets.length, 1, `one hot-reload socket, never reopened: ${JSON.stringify(sockets)}`);
      // No token the provider issued reached the page through the dev server either.
      const surfaces = [...(await Promise.all(bodies)), await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }) + document.cookie)];
      assert.ok(stack.issued.length > 0);
      for (const surface of surfaces) for (const token of stack.issued) assert.ok(!surface.includes(token.value), `a ${token.kind} reached the page`);
    } finally {
      await context.close();
    }
  });

  test("the broker's cookies and Authorization never reach the dev server", async () => {
    const seen = readFileSync(LOG, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { kind: string; url: string; headers: Record<string, string> });
    assert.ok(seen.some((r) => r.kind === 'request' && r.url.startsWith('/src/')), 'the dev server served the sources');
    assert.ok(seen.some((r) => r.kind === 'upgrade'), 'the dev server received the hot-reload upgrade');
    for (const record of seen) {
      assert.equal(record.headers.cookie, undefined, `${record.kind} ${record.url} carried a Cookie`);
      assert.equal(record.headers.authorization, undefined, `${record.kind} ${record.url} carried Authorization`);
      assert.ok(!JSON.stringify(record.headers).includes('cloakroom'), `${record.kind} ${record.url}: a broker cookie name`);
    }
    for (const token of stack.issued) assert.ok(!readFileSync(LOG, 'utf8').includes(token.value), `a ${token.kind} reached the dev server`);
  });

  test("a foreign Origin cannot open the dev server's WebSocket through the broker; reserved paths are not proxied", async () => {
    assert.equal(await handshakeStatus(stack.port, 'https://evil.example'), 403);
    // The broker's own origin gets through to the dev server (which checks its own token).
    assert.notEqual(await handshakeStatus(stack.port, stack.url), 403);
    const notFound = await fetch(`${stack.url}/auth/nope`, { headers: { accept: 'text/html' } });
    assert.equal(notFound.status, 404);
    assert.deepEqual(await notFound.json(), { error: 'not_found' });
  });
});
