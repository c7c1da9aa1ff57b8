import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../../lib/config/load.ts';
import { checkCsrf, checkSameOrigin } from '../../../lib/security/csrf.ts';
import { BrokerError } from '../../../lib/errors.ts';

const ORIGIN = 'https://app.example.com';
const config = { appOrigin: ORIGIN } as unknown as Config;

function request(headers: Record<string, string>, method = 'GET'): Request {
  return new Request(`${ORIGIN}/api/orders`, { method, headers });
}

function assertCsrfRefusal(fn: () => void, message: string): void {
  assert.throws(
    fn,
    (error: unknown) => {
      assert.ok(error instanceof BrokerError, `expected a BrokerError, got ${String(error)}`);
      assert.equal(error.code, 'csrf');
      assert.equal(error.status, 403);
      return true;
    },
    message,
  );
}

describe('checkCsrf', () => {
  it('allows X-CSRF: 1 with no other evidence', () => {
    assert.equal(checkCsrf(request({ 'x-csrf': '1' }), config), undefined);
  });

  it('requires X-CSRF to be exactly 1', () => {
    for (const value of ['true', '0', '', '1 ,1', 'yes', '01']) {
      assertCsrfRefusal(() => checkCsrf(request({ 'x-csrf': value }), config), `X-CSRF: ${JSON.stringify(value)}`);
    }
    assertCsrfRefusal(() => checkCsrf(request({}), config), 'no X-CSRF');
    assertCsrfRefusal(() => checkCsrf(request({ 'sec-fetch-site': 'same-origin', origin: ORIGIN }), config), 'same-origin but no X-CSRF');
  });

  it('refuses a foreign Origin, even with X-CSRF: 1', () => {
    for (const origin of ['https://evil.example.com', 'http://app.example.com', 'https://app.example.com:8443', 'https://app.example.com.evil.com', `${ORIGIN}/`]) {
      assertCsrfRefusal(() => checkCsrf(request({ 'x-csrf': '1', origin }), config), origin);
    }
  });

  it('refuses Origin: null (sandboxed frames, data: URLs)', () => {
    assertCsrfRefusal(() => checkCsrf(request({ 'x-csrf': '1', origin: 'null' }), config), 'Origin: null');
  });

  it('refuses Sec-Fetch-Site cross-site and same-site', () => {
    for (const site of ['cross-site', 'same-site', 'bogus']) {
      assertCsrfRefusal(() => checkCsrf(request({ 'x-csrf': '1', 'sec-fetch-site': site }), config), site);
      assertCsrfRefusal(() => checkCsrf(request({ 'x-csrf': '1', 'sec-fetch-site': site, origin: ORIGIN }), config), `${site} with our Origin`);
    }
  });

  it('allows Sec-Fetch-Site same-origin and none, with or without our Origin', () => {
    for (const site of ['same-origin', 'none']) {
      assert.equal(checkCsrf(request({ 'x-csrf': '1', 'sec-fetch-site': site }), config), undefined);
      assert.equal(checkCsrf(request({ 'x-csrf': '1', 'sec-fetch-site': site, origin: ORIGIN }, 'POST'), config), undefined);
    }
  });
});

describe('checkSameOrigin (POST /auth/logout)', () => {
  it('refuses a request with neither Origin nor Sec-Fetch-Site', () => {
    assertCsrfRefusal(() => checkSameOrigin(request({}, 'POST'), config), 'no evidence');
  });

  it('allows Sec-Fetch-Site: same-origin alone', () => {
    assert.equal(checkSameOrigin(request({ 'sec-fetch-site': 'same-origin' }, 'POST'), config), undefined);
  });

  it('allows our Origin alone, and with Sec-Fetch-Site same-origin', () => {
    assert.equal(checkSameOrigin(request({ origin: ORIGIN }, 'POST'), config), undefined);
    assert.equal(checkSameOrigin(request({ origin: ORIGIN, 'sec-fetch-site': 'same-origin' }, 'POST'), config), undefined);
  });

  it('refuses Sec-Fetch-Site none alone (typed into the address bar is not a form post of ours)', () => {
    assertCsrfRefusal(() => checkSameOrigin(request({ 'sec-fetch-site': 'none' }, 'POST'), config), 'none');
  });

  it('refuses a foreign or null Origin, and cross-site or same-site fetch metadata', () => {
    assertCsrfRefusal(() => checkSameOrigin(request({ origin: 'https://evil.example.com' }, 'POST'), config), 'foreign');
    assertCsrfRefusal(() => checkSameOrigin(request({ origin: 'null' }, 'POST'), config), 'null');
    assertCsrfRefusal(() => checkSameOrigin(request({ origin: 'https://evil.example.com', 'sec-fetch-site': 'same-origin' }, 'POST'), config), 'foreign Origin wins');
    assertCsrfRefusal(() => checkSameOrigin(request({ 'sec-fetch-site': 'cross-site' }, 'POST'), config), 'cross-site');
    assertCsrfRefusal(() => checkSameOrigin(request({ origin: ORIGIN, 'sec-fetch-site': 'same-site' }, 'POST'), config), 'same-site');
  });
});
