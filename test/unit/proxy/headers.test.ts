import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  HOP_BY_HOP_HEADERS,
  REQUEST_HEADERS_FORWARDED,
  REQUEST_HEADERS_NEVER_FORWARDED,
  REQUEST_HEADER_PREFIXES_NEVER_FORWARDED,
  SHARED_CACHE_RESPONSE_HEADERS,
  RESPONSE_HEADERS_NEVER_RETURNED,
  headersForBrowser,
  headersForUpstream,
} from '../../../lib/proxy/headers.ts';

type Pair = [string, string];
type Payloads = {
  neverToUpstream: Pair[];
  keptToUpstream: Pair[];
  notAllowListed: Pair[];
  connectionNamed: Array<{ connection: string; headers: Pair[]; dropped: string[]; kept: string[] }>;
  neverToBrowser: Pair[];
  keptToBrowser: Pair[];
  cacheControlOfAuthenticatedAnswers: Array<{ api: string[]; browser: string }>;
  sharedCacheHeaders: Pair[];
};
const payloads = JSON.parse(
  readFileSync(new URL('../../fixtures/header-payloads.json', import.meta.url), 'utf8'),
) as Payloads;

const options = { forwardedProto: 'https', forwardedHost: 'app.example.com' };

describe('headersForUpstream: what never reaches the API', () => {
  for (const [name, value] of payloads.neverToUpstream) {
    it(`drops ${name}: ${value}`, () => {
      const out = headersForUpstream(new Headers([[name, value]]), options);
      const lower = name.toLowerCase();
      if (lower === 'authorization' || lower.startsWith('x-forwarded-')) {
        // Replaced by the broker's own value, never the browser's.
        assert.notEqual(out.get(name), value);
      } else {
        assert.equal(out.has(name), false);
      }
    });
  }

  it('drops all of them at once and keeps all the ordinary ones', () => {
    const out = headersForUpstream(new Headers([...payloads.neverToUpstream, ...payloads.keptToUpstream]), options);
    for (const [name] of payloads.keptToUpstream) assert.ok(out.has(name), name);
    const names = [...out.keys()].sort();
    const expected = [
      ...payloads.keptToUpstream.map(([name]) => name.toLowerCase()),
      'x-forwarded-host',
      'x-forwarded-proto',
    ].sort();
    assert.deepEqual(names, expected);
  });

  for (const [name, value] of payloads.keptToUpstream) {
    it(`keeps ${name}`, () => {
      const out = headersForUpstream(new Headers([[name, value]]), options);
      assert.equal(out.get(name), value);
    });
  }

  for (const { connection, headers, dropped, kept } of payloads.connectionNamed) {
    it(`drops the headers named by Connection: ${connection}`, () => {
      const out = headersForUpstream(new Headers([['Connection', connection], ...headers]), options);
      for (const name of dropped) assert.equal(out.has(name), false, name);
      for (const name of kept) assert.ok(out.has(name), name);
    });
  }

  it('drops headers named in several Connection values, also those a route forwards', () => {
    const incoming = new Headers();
    incoming.append('connection', 'x-one');
    incoming.append('Connection', 'X-Two');
    incoming.set('x-one', '1');
    incoming.set('x-two', '2');
    incoming.set('x-three', '3');
    const out = headersForUpstream(incoming, { ...options, forwardHeaders: new Set(['x-one', 'x-two', 'x-three']) });
    assert.deepEqual([...out.keys()].filter((n) => n.startsWith('x-t') || n === 'x-one'), ['x-three']);
  });

  it('a Connection header cannot strip what the broker sets', () => {
    const incoming = new Headers({ Connection: 'authorization, x-forwarded-host, x-forwarded-proto' });
    const out = headersForUpstream(incoming, { ...options, accessToken: 'tok' });
    assert.equal(out.get('authorization'), 'Bearer tok');
    assert.equal(out.get('x-forwarded-host'), 'app.example.com');
    assert.equal(out.get('x-forwarded-proto'), 'https');
  });
});

describe('headersForUpstream: an allow-list (M9)', () => {
  for (const [name, value] of payloads.notAllowListed) {
    it(`drops ${name} unless the route lists it in forwardHeaders`, () => {
      assert.equal(headersForUpstream(new Headers([[name, value]]), options).has(name), false);
      const listed = headersForUpstream(new Headers([[name, value]]), { ...options, forwardHeaders: new Set([name.toLowerCase()]) });
      assert.equal(listed.get(name), value);
    });
  }

  it('never forwards an identity, credential or mesh-control header, even when a route lists it', () => {
    const names = new Set(payloads.neverToUpstream.map(([name]) => name.toLowerCase()));
    const out = headersForUpstream(new Headers(payloads.neverToUpstream), { ...options, forwardHeaders: names });
    assert.deepEqual([...out.keys()].sort(), ['x-forwarded-host', 'x-forwarded-proto']);
    assert.equal(out.get('x-forwarded-host'), 'app.example.com');
  });

  it('the allow-list and the never-lists do not overlap', () => {
    for (const name of REQUEST_HEADERS_FORWARDED) {
      assert.equal(REQUEST_HEADERS_NEVER_FORWARDED.has(name), false, name);
      for (const prefix of REQUEST_HEADER_PREFIXES_NEVER_FORWARDED) assert.equal(name.startsWith(prefix), false, name);
    }
  });
});

describe('headersForUpstream: what the broker adds', () => {
  it('sets X-Forwarded-Proto and -Host from the options, over the browser values', () => {
    const incoming = new Headers({ 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'evil.com', Host: 'evil.com' });
    const out = headersForUpstream(incoming, options);
    assert.equal(out.get('x-forwarded-proto'), 'https');
    assert.equal(out.get('x-forwarded-host'), 'app.example.com');
    assert.equal(out.has('host'), false);
  });

  it('sets X-Forwarded-For only from clientIp, never from the request', () => {
    const spoofed = new Headers({ 'X-Forwarded-For': '10.0.0.1, 127.0.0.1' });
    assert.equal(headersForUpstream(spoofed, options).has('x-forwarded-for'), false);
    assert.equal(headersForUpstream(spoofed, { ...options, clientIp: '203.0.113.7' }).get('x-forwarded-for'), '203.0.113.7');
  });

  it('replaces the browser Authorization with the bearer token', () => {
    const incoming = new Headers({ Authorization: 'Bearer forged' });
    assert.equal(headersForUpstream(incoming, { ...options, accessToken: 'at-123' }).get('authorization'), 'Bearer at-123');
    assert.equal(headersForUpstream(incoming, options).has('authorization'), false);
  });

  it('does not modify the incoming headers', () => {
    const incoming = new Headers({ Cookie: 'a=b', Accept: '*/*' });
    headersForUpstream(incoming, { ...options, accessToken: 't' });
    assert.deepEqual([...incoming], [['accept', '*/*'], ['cookie', 'a=b']]);
  });

  it('keeps repeated values combined as Headers combines them', () => {
    const incoming = new Headers();
    incoming.append('Accept', 'text/html');
    incoming.append('accept', 'application/json');
    assert.equal(headersForUpstream(incoming, options).get('accept'), 'text/html, application/json');
  });
});

/** The upstream payloads as undici's `request()` gives them: a plain object, any case. */
function record(pairs: Pair[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    const existing = out[name];
    out[name] = existing === undefined ? value : [...[existing].flat(), value];
  }
  return out;
}

describe('headersForBrowser: what never reaches the browser', () => {
  for (const [name, value] of payloads.neverToBrowser) {
    it(`drops ${name} (Headers and plain object)`, () => {
      assert.equal(headersForBrowser(new Headers([[name, value]]), { authenticated: false }).has(name), false);
      assert.equal(headersForBrowser({ [name]: value }, { authenticated: false }).has(name), false);
    });
  }

  for (const [name, value] of payloads.keptToBrowser) {
    it(`keeps ${name}`, () => {
      assert.equal(headersForBrowser(new Headers([[name, value]]), { authenticated: false }).get(name), value);
      assert.equal(headersForBrowser({ [name]: value }, { authenticated: false }).get(name), value);
    });
  }

  it('drops every Set-Cookie of an array (undici gives set-cookie as an array)', () => {
    const out = headersForBrowser(
      { 'set-cookie': ['a=1; Path=/', '__Host-session=x; Path=/; Secure'], 'content-type': 'text/plain' },
      { authenticated: false },
    );
    assert.deepEqual(out.getSetCookie(), []);
    assert.equal(out.get('content-type'), 'text/plain');
  });

  it('drops every Set-Cookie of a Fetch Headers', () => {
    const upstream = new Headers();
    upstream.append('Set-Cookie', 'a=1');
    upstream.append('Set-Cookie', 'b=2');
    assert.deepEqual(headersForBrowser(upstream, { authenticated: false }).getSetCookie(), []);
  });

  for (const { connection, headers, dropped, kept } of payloads.connectionNamed) {
    it(`drops the headers named by the API's Connection: ${connection}`, () => {
      for (const upstream of [new Headers([['Connection', connection], ...headers]), record([['Connection', connection], ...headers])]) {
        const out = headersForBrowser(upstream, { authenticated: false });
        for (const name of dropped) assert.equal(out.has(name), false, name);
        for (const name of kept) assert.ok(out.has(name), name);
      }
    });
  }

  it('reads Connection given as an array', () => {
    const out = headersForBrowser({ connection: ['x-a', 'X-B'], 'x-a': '1', 'x-b': '2', 'x-c': '3' }, { authenticated: false });
    assert.deepEqual([...out.keys()], ['x-c']);
  });

  it('keeps repeated values, skips undefined ones', () => {
    const out = headersForBrowser({ vary: ['Accept', 'Accept-Encoding'], link: undefined }, { authenticated: false });
    assert.equal(out.get('vary'), 'Accept, Accept-Encoding');
    assert.equal(out.has('link'), false);
  });

  it('drops a value Headers cannot carry instead of failing the answer', () => {
    const out = headersForBrowser({ 'x-bad': 'a\r\nSet-Cookie: x=1', 'x-good': 'ok' }, { authenticated: false });
    assert.equal(out.has('x-bad'), false);
    assert.equal(out.get('x-good'), 'ok');
    assert.deepEqual(out.getSetCookie(), []);
  });
});

describe('headersForBrowser: caching of authenticated answers', () => {
  it('adds Cache-Control: no-store to an authenticated answer without Cache-Control', () => {
    assert.equal(headersForBrowser({ 'content-type': 'application/json' }, { authenticated: true }).get('cache-control'), 'no-store');
    assert.equal(headersForBrowser(new Headers(), { authenticated: true }).get('cache-control'), 'no-store');
  });

  for (const { api, browser } of payloads.cacheControlOfAuthenticatedAnswers) {
    it(`makes ${JSON.stringify(api)} private: ${browser} (M7)`, () => {
      const asRecord = api.length === 0 ? {} : { 'Cache-Control': api.length === 1 ? (api[0] as string) : api };
      assert.equal(headersForBrowser(asRecord, { authenticated: true }).get('cache-control'), browser);
      const asHeaders = new Headers();
      for (const value of api) asHeaders.append('cache-control', value);
      assert.equal(headersForBrowser(asHeaders, { authenticated: true }).get('cache-control'), browser);
    });
  }

  for (const [name, value] of payloads.sharedCacheHeaders) {
    it(`drops ${name} from an authenticated answer, keeps it on an anonymous one (M7)`, () => {
      assert.equal(headersForBrowser({ [name]: value }, { authenticated: true }).has(name), false);
      assert.equal(headersForBrowser({ [name]: value }, { authenticated: false }).get(name), value);
    });
  }

  it('adds Vary: Cookie to an authenticated answer, merged with the API\'s Vary', () => {
    assert.equal(headersForBrowser({}, { authenticated: true }).get('vary'), 'Cookie');
    assert.equal(headersForBrowser({ vary: ['Accept', 'Accept-Encoding'] }, { authenticated: true }).get('vary'), 'Accept, Accept-Encoding, Cookie');
    assert.equal(headersForBrowser({ Vary: 'accept, COOKIE' }, { authenticated: true }).get('vary'), 'accept, COOKIE');
    assert.equal(headersForBrowser({ Vary: '*' }, { authenticated: true }).get('vary'), '*');
    assert.equal(headersForBrowser({ vary: 'Accept' }, { authenticated: false }).get('vary'), 'Accept');
  });

  it('the shared-cache list holds lower-case names only', () => {
    for (const name of SHARED_CACHE_RESPONSE_HEADERS) assert.equal(name, name.toLowerCase());
  });

  it('adds nothing to an unauthenticated answer', () => {
    assert.equal(headersForBrowser({ 'content-type': 'text/plain' }, { authenticated: false }).has('cache-control'), false);
  });

  it('a Cache-Control named in Connection is gone, so no-store is added', () => {
    const out = headersForBrowser({ connection: 'cache-control', 'cache-control': 'public, max-age=3600' }, { authenticated: true });
    assert.equal(out.get('cache-control'), 'no-store');
  });
});

describe('the exported lists', () => {
  it('contain lower-case names only', () => {
    for (const set of [HOP_BY_HOP_HEADERS, REQUEST_HEADERS_NEVER_FORWARDED, RESPONSE_HEADERS_NEVER_RETURNED]) {
      for (const name of set) assert.equal(name, name.toLowerCase());
    }
  });

  it('hold the RFC 9110 §7.6.1 hop-by-hop headers in both directions', () => {
    for (const name of ['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade']) {
      assert.ok(HOP_BY_HOP_HEADERS.has(name), name);
      assert.ok(REQUEST_HEADERS_NEVER_FORWARDED.has(name), name);
      assert.ok(RESPONSE_HEADERS_NEVER_RETURNED.has(name), name);
    }
  });
});
