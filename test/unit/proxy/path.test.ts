import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildUpstreamUrl } from '../../../lib/proxy/path.ts';
import { matchRoute, parseRouteTable, type Route } from '../../../lib/proxy/route-table.ts';

type Payloads = { refused: string[]; allowed: string[] };
const payloads = JSON.parse(
  readFileSync(new URL('../../fixtures/path-payloads.json', import.meta.url), 'utf8'),
) as Payloads;

function route(upstream: string, path = '/api/orders'): Route {
  const table = parseRouteTable([{ path, upstream }]);
  if (!table.ok) assert.fail(table.problems.join('\n'));
  return table.routes[0] as Route;
}

const withBase = route('https://orders.internal/v1');
const withoutBase = route('http://localhost:3002');

const show = (value: string): string => JSON.stringify(value);

describe('buildUpstreamUrl: traversal payloads are refused', () => {
  it('the fixture is large enough to mean something', () => {
    assert.ok(payloads.refused.length >= 40);
  });

  for (const remainder of payloads.refused) {
    it(`refuses ${show(remainder)}`, () => {
      for (const r of [withBase, withoutBase]) {
        const result = buildUpstreamUrl(r, remainder, '');
        assert.equal(result.ok, false, `forwarded to ${result.ok ? result.url.href : ''}`);
        if (!result.ok) assert.ok(result.reason.length > 0);
      }
    });
  }
});

describe('buildUpstreamUrl: ordinary paths are forwarded unchanged', () => {
  for (const remainder of payloads.allowed) {
    it(`forwards ${show(remainder)}`, () => {
      const result = buildUpstreamUrl(withBase, remainder, '');
      if (!result.ok) assert.fail(result.reason);
      assert.equal(result.url.href, `https://orders.internal/v1${remainder}`);
      const bare = buildUpstreamUrl(withoutBase, remainder, '');
      if (!bare.ok) assert.fail(bare.reason);
      assert.equal(bare.url.href, `http://localhost:3002${remainder || '/'}`);
    });
  }
});

describe('buildUpstreamUrl: composition', () => {
  const cases: Array<[string, string, string, string]> = [
    // upstream, remainder, search, expected
    ['https://h/v1', '/a/b', '?x=1', 'https://h/v1/a/b?x=1'],
    ['https://h/v1/', '/a/b', '?x=1', 'https://h/v1/a/b?x=1'],
    ['https://h/v1', '', '', 'https://h/v1'],
    ['https://h/v1', '/', '', 'https://h/v1/'],
    ['https://h/v1', '', '?x=1', 'https://h/v1?x=1'],
    ['https://h', '', '', 'https://h/'],
    ['https://h', '', '?x=1', 'https://h/?x=1'],
    ['https://h', '/a', '', 'https://h/a'],
    ['https://h/', '/a/', '?', 'https://h/a/?'],
    ['http://localhost:3002', '/me', '?a=1&b=%2F&c', 'http://localhost:3002/me?a=1&b=%2F&c'],
    ['https://h:8443/deep/base/path', '/x', '', 'https://h:8443/deep/base/path/x'],
    ['http://[::1]:8080/v1', '/x', '', 'http://[::1]:8080/v1/x'],
    ['https://h/v1', '/a%20b/%E2%9C%93', '?q=%E2%9C%93', 'https://h/v1/a%20b/%E2%9C%93?q=%E2%9C%93'],
    ['https://h/v1', '/x', '?next=/../../admin', 'https://h/v1/x?next=/../../admin'],
    ['https://h/v1', '/x', '?a=%0d%0a', 'https://h/v1/x?a=%0d%0a'],
  ];
  for (const [upstream, remainder, search, expected] of cases) {
    it(`${upstream} + ${show(remainder)} + ${show(search)} → ${expected}`, () => {
      const result = buildUpstreamUrl(route(upstream), remainder, search);
      if (!result.ok) assert.fail(result.reason);
      assert.equal(result.url.href, expected);
      assert.equal(result.origin + result.path, expected, 'what is sent is what was composed');
    });
  }

  it('does the CONTRACT.md example end to end with matchRoute', () => {
    const table = parseRouteTable([{ path: '/api/orders', upstream: 'https://orders.internal/v1' }]);
    assert.ok(table.ok);
    const request = new URL('https://app.example.com/api/orders/a/b?x=1');
    const match = matchRoute(table.routes, request.pathname);
    assert.ok(match);
    const result = buildUpstreamUrl(match.route, match.remainder, request.search);
    assert.ok(result.ok);
    assert.equal(result.url.href, 'https://orders.internal/v1/a/b?x=1');
  });

  it('never lets the query become part of the path or a fragment', () => {
    for (const search of ['x=1', '?a#b', '?a b', '?a\tb', '?a\r\nHost: evil', '?\u00e9', '?\u0000']) {
      const result = buildUpstreamUrl(withBase, '/a', search);
      assert.equal(result.ok, false, show(search));
    }
  });

  it('stays under the base path at a segment boundary for every allowed payload', () => {
    for (const remainder of payloads.allowed) {
      const result = buildUpstreamUrl(withBase, remainder, '?q=1');
      assert.ok(result.ok);
      assert.equal(result.url.origin, 'https://orders.internal');
      assert.ok(result.url.pathname === '/v1' || result.url.pathname.startsWith('/v1/'), result.url.pathname);
    }
  });

  it('defence in depth: refuses what the URL parser would rewrite', () => {
    // These pass the segment checks but would not be sent as written.
    for (const remainder of ['/a"b', '/a<b>', '/a`b', '/a{b}']) {
      const result = buildUpstreamUrl(withBase, remainder, '');
      assert.equal(result.ok, false, remainder);
    }
  });

  it('sends the query as composed, not as the URL parser re-serialises it (byte for byte)', () => {
    for (const search of ["?a='1'", '?q="x"', '?lt=<b>', '?bad=%zz', '?x=1&y=%20z&x=2&empty=']) {
      const result = buildUpstreamUrl(withBase, '/x', search);
      if (!result.ok) assert.fail(`${search}: ${result.reason}`);
      assert.equal(result.origin, 'https://orders.internal');
      assert.equal(result.path, `/v1/x${search}`);
    }
  });

  it('uses the normalised base even for a hand-built route with a trailing slash', () => {
    const handMade: Route = { ...withBase, upstream: new URL('https://orders.internal/v1/') };
    const result = buildUpstreamUrl(handMade, '/a', '');
    assert.ok(result.ok);
    assert.equal(result.url.href, 'https://orders.internal/v1/a');
  });

  it('refuses a remainder that still decodes after three passes', () => {
    const result = buildUpstreamUrl(withBase, '/%2525252541', '');
    assert.equal(result.ok, false);
  });

  it('explains a refusal for the log by category and position, never with the path text (L9)', () => {
    const result = buildUpstreamUrl(withBase, '/a/%252e%252e/x', '');
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.match(result.reason, /segment 2/);
      assert.match(result.reason, /dot segment/);
      assert.doesNotMatch(result.reason, /%25|2e/i);
    }
  });
});
