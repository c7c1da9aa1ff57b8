/**
 * The frontend's path rules and headers as pure logic: which request paths may name a
 * file, which names count as content-hashed, what the policy looks like when extended.
 * The same payloads are sent to the production server in test/e2e/frontend-static.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { frontendPathSegments, hasFileExtension, isReservedPath } from '../../../lib/frontend/paths.ts';
import { cacheControlFor } from '../../../lib/frontend/static-files.ts';
import { frontendContentSecurityPolicy, parseCspExtension, securityHeaders } from '../../../lib/frontend/policy.ts';
import { isHtmlNavigation } from '../../../lib/frontend/gate.ts';
import { frontendSecurityHeaders } from '../../../lib/frontend/handler.ts';
import { loadConfig } from '../../../lib/config/load.ts';

const proxyPayloads = JSON.parse(readFileSync('test/fixtures/path-payloads.json', 'utf8')) as { refused: string[]; allowed: string[] };
const frontendPayloads = JSON.parse(readFileSync('test/fixtures/frontend-path-payloads.json', 'utf8')) as { refused: string[] };

/** What each decoded segment must never be: a way up, or a separator smuggled inside one. */
function assertHarmless(raw: string): void {
  const result = frontendPathSegments(raw);
  if (!result.ok) return;
  for (const segment of result.segments) {
    assert.notEqual(segment, '', `${JSON.stringify(raw)}: empty segment`);
    assert.ok(!/^\.+\s*$/.test(segment), `${JSON.stringify(raw)}: dot segment ${JSON.stringify(segment)}`);
    assert.ok(!/[\\/\u0000-\u001f\u007f]/.test(segment), `${JSON.stringify(raw)}: separator or control character in ${JSON.stringify(segment)}`);
    assert.ok(!segment.startsWith('.'), `${JSON.stringify(raw)}: dotfile`);
  }
}

describe('frontend paths', () => {
  test('no proxy path payload decodes to a way out of the directory', () => {
    for (const raw of [...proxyPayloads.refused, ...proxyPayloads.allowed]) assertHarmless(raw.startsWith('/') ? raw : `/${raw}`);
    for (const raw of proxyPayloads.refused) assertHarmless(raw);
  });

  test('the traversal payloads of the frontend fixture are refused outright', () => {
    const traversal = frontendPayloads.refused.filter((raw) => /\.\.|%2e|%00|%5c|%2f|\\|%C0|%EF|\/\/|\/\.[a-z]/i.test(raw));
    assert.ok(traversal.length > 20);
    for (const raw of traversal) assert.equal(frontendPathSegments(raw).ok, false, raw);
  });

  test('ordinary paths decode once into their segments', () => {
    assert.deepEqual(frontendPathSegments('/'), { ok: true, segments: [] });
    assert.deepEqual(frontendPathSegments('/assets/index-BXlz3Kq9.js'), { ok: true, segments: ['assets', 'index-BXlz3Kq9.js'] });
    assert.deepEqual(frontendPathSegments('/my%20file.png'), { ok: true, segments: ['my file.png'] });
    assert.deepEqual(frontendPathSegments('/caf%C3%A9/'), { ok: true, segments: ['café'] });
    // Decoded exactly once: `%252e%252e` is a file literally named `%2e%2e`, never `..`.
    assert.deepEqual(frontendPathSegments('/%252e%252e'), { ok: true, segments: ['%2e%2e'] });
    assert.deepEqual(frontendPathSegments('/orders/42'), { ok: true, segments: ['orders', '42'] });
  });

  test('dotfiles are hidden (404), not malformed (400); a dev server may have its own', () => {
    assert.deepEqual(frontendPathSegments('/.env'), { ok: false, reason: 'a hidden file', hidden: true });
    assert.equal(frontendPathSegments('/node_modules/.vite/deps/react.js', { allowDotfiles: true }).ok, true);
    assert.equal(frontendPathSegments('/node_modules/../x', { allowDotfiles: true }).ok, false);
  });

  test('a path with a file extension is a file, never a page', () => {
    assert.equal(hasFileExtension(['assets', 'app.js']), true);
    assert.equal(hasFileExtension(['favicon.ico']), true);
    assert.equal(hasFileExtension(['orders', '42']), false);
    assert.equal(hasFileExtension([]), false);
  });

  test('reserved prefixes at a segment boundary only', () => {
    for (const path of ['/api', '/api/x', '/auth/nope', '/ops/x', '/.well-known/x']) assert.equal(isReservedPath(path), true, path);
    for (const path of ['/apis', '/author', '/', '/orders/42', '/operations']) assert.equal(isReservedPath(path), false, path);
  });
});

describe('frontend caching rule', () => {
  test('content-hashed names are immutable for a year; index.html and the rest are revalidated', () => {
    const immutable = 'public, max-age=31536000, immutable';
    assert.equal(cacheControlFor(['assets', 'index-BXlz3Kq9.js']), immutable);
    assert.equal(cacheControlFor(['assets', 'index-D2kq_x8a.css']), immutable);
    assert.equal(cacheControlFor(['static', 'js', 'main.8e3a7c21.js']), immutable);
    assert.equal(cacheControlFor(['main.3f2a1b4c5d6e7f80.js']), immutable);
    assert.equal(cacheControlFor(['index.html']), 'no-cache');
    assert.equal(cacheControlFor(['about', 'index.html']), 'no-cache');
    for (const name of ['favicon.svg', 'robots.txt', 'manifest.json', 'my-component.js', 'polyfills-es2015.js']) {
      assert.equal(cacheControlFor([name]), 'no-cache', name);
    }
  });
});

describe('frontend security headers', () => {
  test('the default policy is strict', () => {
    const policy = frontendContentSecurityPolicy({});
    assert.match(policy, /script-src 'self'(;|$)/);
    assert.match(policy, /frame-ancestors 'none'/);
    assert.match(policy, /object-src 'none'/);
    assert.match(policy, /base-uri 'none'/);
    assert.doesNotMatch(policy, /unsafe-inline|unsafe-eval/);
  });

  test('BFF_FRONTEND_CSP adds sources to a directive, or a new directive', () => {
    const extension = parseCspExtension("connect-src https://sentry.example.com; img-src https://cdn.example.com; worker-src 'self' blob:");
    assert.equal(typeof extension, 'object');
    const policy = frontendContentSecurityPolicy(extension as Record<string, string[]>);
    assert.match(policy, /connect-src 'self' https:\/\/sentry\.example\.com/);
    assert.match(policy, /img-src 'self' data: https:\/\/cdn\.example\.com/);
    assert.match(policy, /worker-src 'self' blob:/);
    // Extending a 'none' replaces it: `'none'` with a source is not a valid source list.
    assert.match(frontendContentSecurityPolicy({ 'frame-ancestors': ['https://portal.example.com'] }), /frame-ancestors https:\/\/portal\.example\.com(;|$)/);
  });

  test('BFF_FRONTEND_CSP that is not a directive list is a configuration problem', () => {
    assert.equal(typeof parseCspExtension('connect-src https://a.example.com, https://b.example.com'), 'string');
    assert.equal(typeof parseCspExtension('1nvalid x'), 'string');
    assert.deepEqual(parseCspExtension(''), {});
  });

  test('the configuration decides: HSTS under an https APP_BASE_URL, the provider in form-action, the extension merged', () => {
    const env = {
      OIDC_ISSUER: 'https://id.example.com/realms/main',
      OIDC_CLIENT_ID: 'cloakroom',
      OIDC_CLIENT_SECRET: 'client-secret',
      SESSION_SECRETS: 'BnZe+9nVLCHfjkxTpE8FFkesLF+742lRsemoN5y2ECs=',
      BFF_ROUTES: '[]',
      BFF_FRONTEND_DIR: 'examples/spa',
      BFF_FRONTEND_CSP: 'connect-src https://sentry.example.com',
    };
    const https = new Map(frontendSecurityHeaders(loadConfig({ ...env, APP_BASE_URL: 'https://app.example.com' })));
    assert.equal(https.get('strict-transport-security'), 'max-age=63072000');
    assert.match(https.get('content-security-policy') ?? '', /form-action 'self' https:\/\/id\.example\.com;/);
    assert.match(https.get('content-security-policy') ?? '', /connect-src 'self' https:\/\/sentry\.example\.com/);
    const http = new Map(frontendSecurityHeaders(loadConfig({ ...env, APP_BASE_URL: 'http://localhost:3000' })));
    assert.equal(http.get('strict-transport-security'), undefined);
  });

  test('HSTS only under https', () => {
    assert.equal(securityHeaders('x', false).some(([name]) => name === 'strict-transport-security'), false);
    assert.equal(securityHeaders('x', true).some(([name]) => name === 'strict-transport-security'), true);
  });
});

describe('HTML navigations', () => {
  const request = (method: string, headers: Record<string, string>) => new Request('http://localhost/x', { method, headers });
  test('fetch metadata first, Accept otherwise', () => {
    assert.equal(isHtmlNavigation(request('GET', { 'sec-fetch-mode': 'navigate', accept: '*/*' })), true);
    assert.equal(isHtmlNavigation(request('GET', { 'sec-fetch-mode': 'cors', accept: 'text/html' })), false);
    assert.equal(isHtmlNavigation(request('GET', { accept: 'text/html,application/xhtml+xml' })), true);
    assert.equal(isHtmlNavigation(request('HEAD', { accept: 'text/html' })), true);
    assert.equal(isHtmlNavigation(request('GET', { accept: '*/*' })), false);
    assert.equal(isHtmlNavigation(request('POST', { accept: 'text/html', 'sec-fetch-mode': 'navigate' })), false);
  });
});
