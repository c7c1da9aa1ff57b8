/**
 * proxy.ts's matcher, compiled and run by Next.js's own code (the functions `next build`
 * and `next start` use), must select exactly the /api paths that `decodeURIComponent`
 * refuses: those answer 400 there, and Next.js buffers and truncates the body of every
 * request it selects, so a path that decodes must never match (AUDIT M1).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { config } from '../../../proxy.ts';

const require = createRequire(import.meta.url);
const { getMiddlewareMatchers } = require('next/dist/build/analysis/get-page-static-info.js') as {
  getMiddlewareMatchers: (matcher: unknown, nextConfig: object) => Array<{ regexp: string }>;
};
const { getMiddlewareRouteMatcher } = require('next/dist/shared/lib/router/utils/middleware-route-matcher.js') as {
  getMiddlewareRouteMatcher: (matchers: Array<{ regexp: string }>) => (pathname: string, req?: unknown, query?: unknown) => boolean;
};

const matches = getMiddlewareRouteMatcher(getMiddlewareMatchers(config.matcher, {}));
const undecodable = (path: string) => {
  try {
    decodeURIComponent(path);
    return false;
  } catch {
    return true;
  }
};

function assertAgrees(rest: string): void {
  const path = `/api/demo/${rest}`;
  assert.equal(matches(path), undecodable(path), `${path}: matched ${matches(path)}, undecodable ${undecodable(path)}`);
}

const escape = (byte: number, lower = false) => {
  const hex = byte.toString(16).padStart(2, '0');
  return `%${lower ? hex : hex.toUpperCase()}`;
};
/** Bytes at every boundary of RFC 3629's table. */
const EDGES = [0x00, 0x2f, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff];

describe('proxy.ts matcher', () => {
  it('does not select the paths that decode, however encoded', () => {
    for (const path of ['/api/files/report%202024.bin', '/api/files/caf%C3%A9', '/api/files/caf%c3%a9', '/api/x/%E2%82%AC/%F0%9F%98%80', '/api/x/plain', '/api/x/a%2Fb']) {
      assert.equal(matches(path), false, path);
    }
  });

  it('selects the paths that do not decode', () => {
    for (const path of ['/api/demo/%FF', '/api/demo/%C0%AE%C0%AE/x', '/api/demo/%ED%A0%80', '/api/demo/%F4%90%80%80', '/api/demo/%zz', '/api/demo/x%', '/api/demo/%4', '/api/demo/%C3']) {
      assert.equal(matches(path), true, path);
    }
  });

  it('agrees with decodeURIComponent on every escape, both letter cases', () => {
    for (let byte = 0; byte < 256; byte++) for (const lower of [false, true]) assertAgrees(`a${escape(byte, lower)}b`);
  });

  it('agrees on every sequence of up to three boundary bytes, and on four after each lead byte', () => {
    for (const a of EDGES) {
      assertAgrees(escape(a));
      for (const b of EDGES) {
        assertAgrees(escape(a) + escape(b));
        for (const c of EDGES) {
          assertAgrees(escape(a) + escape(b) + escape(c));
          if (a >= 0xf0) for (const d of EDGES) assertAgrees(escape(a) + escape(b) + escape(c) + escape(d));
        }
      }
    }
  });

  it('agrees on malformed escapes and on random byte strings', () => {
    for (const rest of ['%', '%%', '%%41', '%4', '%G0', '%0G', 'x%2', '%C3%A', '%C3%', '%E2%82', '100%25', '%25zz']) assertAgrees(rest);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    for (let i = 0; i < 20_000; i++) {
      let rest = '';
      for (let n = 1 + (i % 6); n > 0; n--) {
        const byte = random();
        rest += byte < 0x80 && /[A-Za-z0-9]/.test(String.fromCharCode(byte)) && i % 3 === 0 ? String.fromCharCode(byte) : escape(byte, i % 2 === 0);
      }
      assertAgrees(rest);
    }
  });
});
