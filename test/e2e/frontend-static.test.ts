/**
 * A static build fronted by the production server (`npm start`, BFF_FRONTEND_DIR): types,
 * caching, validators, HEAD, the SPA fallback and where it never applies, the broker's
 * own endpoints untouched, security headers — and no path (the proxy's path payloads and
 * the frontend's own, sent byte for byte) reaching a file outside the directory, a
 * dotfile, a symlink out of it, or a directory listing.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { isSendablePath, rawRequest, rawSocketRequest, type RawAnswer } from '../helpers/raw-http.ts';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-BUILD';
const DOTFILE = 'DOTFILE-SECRET';
const SHELL = '<!doctype html><html><head><title>app shell</title><script type="module" src="/assets/index-AbCd1234.js"></script></head><body>APP-SHELL</body></html>';
const ASSET = 'console.log("hashed asset");';
const NAVIGATE: Array<[string, string]> = [
  ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['Sec-Fetch-Mode', 'navigate'],
  ['Sec-Fetch-Dest', 'document'],
];

const root = mkdtempSync(join(tmpdir(), 'cloakroom-frontend-static-'));
const site = join(root, 'site');
function layOutBuild(): void {
  mkdirSync(join(site, 'assets'), { recursive: true });
  mkdirSync(join(site, 'nested'), { recursive: true });
  mkdirSync(join(root, 'outside'), { recursive: true });
  writeFileSync(join(site, 'index.html'), SHELL);
  writeFileSync(join(site, 'assets', 'index-AbCd1234.js'), ASSET);
  writeFileSync(join(site, 'assets', 'style-9f8e7d6c.css'), 'body{color:#123}');
  writeFileSync(join(site, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  writeFileSync(join(site, 'nested', 'page.txt'), 'nested file');
  writeFileSync(join(site, '.env'), DOTFILE);
  mkdirSync(join(site, '.git'));
  writeFileSync(join(site, '.git', 'config'), DOTFILE);
  writeFileSync(join(site, 'assets', '.hidden.js'), DOTFILE);
  writeFileSync(join(root, 'secret.txt'), SECRET);
  writeFileSync(join(root, 'outside', 'secret.txt'), SECRET);
  // Links out of the build: followed by a naive server, refused by the realpath check.
  symlinkSync(join(root, 'outside'), join(site, 'escape'));
  symlinkSync(join(root, 'secret.txt'), join(site, 'escape-file.txt'));
  // A link that stays inside is fine.
  symlinkSync(join(site, 'favicon.svg'), join(site, 'icon-link.svg'));
}

const proxyPayloads = JSON.parse(readFileSync('test/fixtures/path-payloads.json', 'utf8')) as { refused: string[]; allowed: string[] };
const frontendPayloads = JSON.parse(readFileSync('test/fixtures/frontend-path-payloads.json', 'utf8')) as { refused: string[] };

function assertNoLeak(where: string, answer: { status: number; body: string }): void {
  assert.ok(!answer.body.includes(SECRET), `${where}: served the file outside the build`);
  assert.ok(!answer.body.includes(DOTFILE), `${where}: served a dotfile`);
  assert.ok(!/nested file|page\.txt/.test(answer.body) || where.includes('nested/page.txt'), `${where}: listed a directory`);
  assert.ok(answer.status !== 500 && answer.status !== 0, `${where}: answered ${answer.status}`);
}

describe('a static build behind npm start (BFF_FRONTEND_DIR)', () => {
  let stack: ProductionStack;
  const get = (path: string, headers: Array<[string, string]> = [], method = 'GET'): Promise<RawAnswer> =>
    rawRequest(stack.url, { method, path, headers });

  before(async () => {
    layOutBuild();
    stack = await startProductionStack({ npmStart: true, env: { BFF_FRONTEND_DIR: site } });
  });
  after(async () => {
    await stack?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('the app replaces the demo start page at /, with the security headers and no-cache', async () => {
    const answer = await get('/', NAVIGATE);
    assert.equal(answer.status, 200);
    assert.equal(answer.body.toString(), SHELL);
    assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(answer.headers['cache-control'], 'no-cache');
    const csp = String(answer.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, new RegExp(`form-action 'self' ${new URL(stack.idp.issuer).origin.replace(/[.]/g, '\\.')}`));
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    assert.equal(answer.headers['referrer-policy'], 'same-origin');
    assert.equal(answer.headers['x-frame-options'], 'DENY');
    // http APP_BASE_URL: no HSTS (it is sent only under https).
    assert.equal(answer.headers['strict-transport-security'], undefined);
    assert.equal((await get('/index.html', NAVIGATE)).body.toString(), SHELL);
  });

  test('hashed assets: their type, immutable for a year, an ETag that revalidates to 304', async () => {
    const answer = await get('/assets/index-AbCd1234.js');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.toString(), ASSET);
    assert.equal(answer.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(answer.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    assert.equal(answer.headers['content-length'], String(ASSET.length));
    const etag = String(answer.headers.etag);
    assert.match(etag, /^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    const again = await get('/assets/index-AbCd1234.js', [['If-None-Match', etag]]);
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    const css = await get('/assets/style-9f8e7d6c.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(css.headers['cache-control'], 'public, max-age=31536000, immutable');
    const icon = await get('/favicon.svg');
    assert.equal(icon.headers['content-type'], 'image/svg+xml');
    assert.equal(icon.headers['cache-control'], 'no-cache');
    assert.equal((await get('/icon-link.svg')).status, 200, 'a symlink that stays inside the build is served');
  });

  test('HEAD: the headers of GET, no body', async () => {
    const answer = await get('/assets/index-AbCd1234.js', [], 'HEAD');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.length, 0);
    assert.equal(answer.headers['content-length'], String(ASSET.length));
    assert.equal(answer.headers['content-type'], 'text/javascript; charset=utf-8');
    const page = await get('/orders/42', NAVIGATE, 'HEAD');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-length'], String(SHELL.length));
  });

  test('SPA fallback: index.html for an HTML navigation to an unknown page, nothing else', async () => {
    for (const headers of [NAVIGATE, [['Accept', 'text/html']] as Array<[string, string]>]) {
      const page = await get('/orders/42?tab=items', headers);
      assert.equal(page.status, 200);
      assert.equal(page.body.toString(), SHELL);
      assert.equal(page.headers['cache-control'], 'no-cache');
      assert.equal(page.headers.vary, 'sec-fetch-mode, accept', 'a cache tells the page from the 404 a fetch gets');
    }
    // Not a navigation (fetch(), a script): 404, never HTML.
    for (const headers of [[], [['Accept', 'application/json']], [['Sec-Fetch-Mode', 'cors'], ['Accept', 'text/html']]] as Array<Array<[string, string]>>) {
      const answer = await get('/orders/42', headers);
      assert.equal(answer.status, 404, JSON.stringify(headers));
      assert.deepEqual(JSON.parse(answer.body.toString()), { error: 'not_found' });
    }
    // A missing asset is a 404 even for a navigation: a stale tab must not run HTML as a script.
    for (const path of ['/assets/index-Gone5678.js', '/orders/42.json', '/missing.css', '/favicon.ico']) {
      const answer = await get(path, NAVIGATE);
      assert.equal(answer.status, 404, path);
      assert.ok(!answer.body.toString().includes('APP-SHELL'), path);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', `${path}: security headers on errors too`);
    }
    assert.equal((await get('/', [], 'POST')).status, 405);
  });

  test("the broker's own paths never fall back to the app", async () => {
    for (const path of ['/auth/nope', '/auth', '/ops/x', '/.well-known/openid-configuration', '/.well-known/x', '/api/nope']) {
      const answer = await get(path, NAVIGATE);
      assert.ok(answer.status === 404 || answer.status === 403, `${path}: ${answer.status}`);
      assert.ok(!answer.body.toString().includes('APP-SHELL'), `${path} answered the app shell`);
      assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8', path);
    }
    // `/_next/*` stays Next's (the broker's own pages' assets): its answer, not the app's.
    const nextAsset = await get('/_next/static/chunks/missing-0000.js');
    assert.equal(nextAsset.status, 404);
    assert.doesNotMatch(String(nextAsset.headers['content-security-policy']), /form-action/, "Next's own policy, not the app's");
    assert.deepEqual(JSON.parse((await get('/healthz')).body.toString()), { status: 'ok' });
    const session = await get('/auth/session', [['X-CSRF', '1']]);
    assert.deepEqual(JSON.parse(session.body.toString()), { authenticated: false });
    const login = await get('/auth/login?returnTo=%2Forders%2F42', NAVIGATE);
    assert.equal(login.status, 302);
    assert.ok(String(login.headers.location).startsWith(stack.idp.issuer));
  });

  test('GET /auth/client.js: the browser client, as a same-origin ES module with an ETag', async () => {
    const answer = await get('/auth/client.js');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(answer.headers['cache-control'], 'public, max-age=300, must-revalidate');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    assert.equal(answer.body.toString(), readFileSync('client/index.js', 'utf8'));
    assert.match(answer.body.toString(), /export async function brokerFetch/);
    const again = await get('/auth/client.js', [['If-None-Match', String(answer.headers.etag)]]);
    assert.equal(again.status, 304);
    assert.equal((await get('/auth/client.js', [], 'POST')).status, 405);
  });

  test('no path payload reaches outside the build, a dotfile, or a listing', async () => {
    const payloads = [...new Set([...proxyPayloads.refused, ...proxyPayloads.allowed, ...frontendPayloads.refused])];
    let sent = 0;
    for (const payload of payloads) {
      const path = payload.startsWith('/') ? payload : `/${payload}`;
      for (const headers of [[], NAVIGATE]) {
        if (isSendablePath(path)) {
          const answer = await get(path, headers);
          assertNoLeak(`${JSON.stringify(path)} ${headers.length ? 'navigation' : 'fetch'}`, { status: answer.status, body: answer.body.toString() });
          if (answer.status === 200) assert.ok(answer.body.toString() === SHELL || payload.includes('favicon'), `${JSON.stringify(path)} answered 200 with something other than the app shell`);
        } else {
          const answer = await rawSocketRequest(stack.port, `GET ${path} HTTP/1.1\r\nHost: localhost:${stack.port}${headers.map(([n, v]) => `\r\n${n}: ${v}`).join('')}`);
          assertNoLeak(JSON.stringify(path), { status: answer.status, body: answer.text });
        }
        sent += 1;
      }
    }
    assert.ok(sent > 300, `${sent} requests`);
    // Not a navigation: every frontend payload is refused outright (400) or absent (404).
    for (const path of frontendPayloads.refused) {
      if (!isSendablePath(path)) continue;
      const answer = await get(path);
      assert.ok(answer.status === 400 || answer.status === 404, `${JSON.stringify(path)}: ${answer.status}`);
    }
    // The files really are there, so the refusals above are the rules, not their absence.
    assert.equal((await get('/nested/page.txt')).body.toString(), 'nested file');
    assert.match(stack.serverStderr() + stack.serverStdout(), /server_listening/);
  });
});

describe('under next start (no front door)', () => {
  let stack: ProductionStack;
  before(async () => {
    stack = await startProductionStack({});
  });
  after(async () => {
    await stack?.close();
  });

  test('GET /auth/client.js is served by the route file too', async () => {
    const answer = await fetch(`${stack.url}/auth/client.js`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(await answer.text(), readFileSync('client/index.js', 'utf8'));
  });
});
