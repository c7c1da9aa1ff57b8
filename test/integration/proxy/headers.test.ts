/**
 * Header hygiene over real HTTP, both ways (CONTRACT.md: "The browser's `Cookie`,
 * `Authorization`, hop-by-hop and `Connection`-named headers never reach the API; the
 * API's `Set-Cookie` never reaches the browser; redirects are passed back, never
 * followed"). Every payload of test/fixtures/header-payloads.json is sent by a raw
 * node:http client (names in their odd letter case, headers fetch would refuse) and
 * judged by what the recording upstream, or the browser, actually received.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { rawRequest, type RawAnswer } from '../../helpers/raw-http.ts';
import { encodeHeaderList, startUpstream, type TestUpstream, type UpstreamRecord } from '../../helpers/upstream.ts';

type Pair = [string, string];
const payloads = JSON.parse(readFileSync(new URL('../../fixtures/header-payloads.json', import.meta.url), 'utf8')) as {
  neverToUpstream: Pair[];
  keptToUpstream: Pair[];
  notAllowListed: Pair[];
  connectionNamed: Array<{ connection: string; headers: Pair[]; dropped: string[]; kept: string[] }>;
  neverToBrowser: Pair[];
  keptToBrowser: Pair[];
  sharedCacheHeaders: Pair[];
};

let stack: Stack;
let up: TestUpstream;
let alice: BrowserClient;
let brokerHost: string;

const SAME_ORIGIN: Pair[] = [
  ['X-CSRF', '1'],
  ['Sec-Fetch-Site', 'same-origin'],
];

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/open', upstream: `${up.url}/b`, auth: 'none' },
        { path: '/api/private', upstream: `${up.url}/b`, auth: 'required' },
        { path: '/api/maybe', upstream: `${up.url}/b`, auth: 'optional' },
        { path: '/api/listed', upstream: `${up.url}/b`, auth: 'none', forwardHeaders: payloads.notAllowListed.map(([name]) => name) },
      ]),
    },
  });
  brokerHost = new URL(stack.broker.url).host;
  alice = stack.newBrowser();
  assert.equal((await alice.signIn('alice')).status, 303);
});

after(async () => {
  await stack?.close();
  await up?.close();
});

/** One request through the broker; returns the browser's answer and the one record the upstream made. */
async function through(
  path: string,
  headers: Pair[],
  init: { method?: string; body?: string } = {},
  expectedStatus = 200,
): Promise<{ answer: RawAnswer; record: UpstreamRecord }> {
  up.reset();
  const answer = await rawRequest(stack.broker.url, { path, headers, ...init });
  assert.equal(answer.status, expectedStatus, `${path} answered ${answer.status}: ${answer.body.toString().slice(0, 200)}`);
  assert.equal(up.records.length, 1, 'exactly one upstream request');
  return { answer, record: up.records[0] as UpstreamRecord };
}

/** The values of a header in the raw list, whatever the letter case of its name. */
function rawValues(rawHeaders: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === name) values.push(rawHeaders[i + 1] as string);
  return values;
}

function setCookies(headers: IncomingHttpHeaders): string[] {
  return ([] as string[]).concat(headers['set-cookie'] ?? []);
}

describe('towards the API: never forwarded (header-payloads.json neverToUpstream)', () => {
  /**
   * Headers the broker or its HTTP client set themselves for the next hop: present
   * upstream, but with the broker's own value, never the browser's.
   */
  const own: Record<string, (record: UpstreamRecord) => void> = {
    host: (r) => assert.deepEqual(rawValues(r.rawHeaders, 'host'), [`${up.host}:${up.port}`]),
    // undici's pooled connection to the API announces its own keep-alive.
    connection: (r) => assert.deepEqual(rawValues(r.rawHeaders, 'connection'), ['keep-alive']),
    'x-forwarded-host': (r) => assert.deepEqual(rawValues(r.rawHeaders, 'x-forwarded-host'), [brokerHost]),
    'x-forwarded-proto': (r) => assert.deepEqual(rawValues(r.rawHeaders, 'x-forwarded-proto'), ['http']),
  };

  for (const [name, value] of payloads.neverToUpstream) {
    const lower = name.toLowerCase();
    test(`${name}: ${value}`, async () => {
      const headers: Pair[] = lower === 'x-csrf' ? [['Sec-Fetch-Site', 'same-origin']] : [...SAME_ORIGIN];
      headers.push([name, value]);
      let init: { method?: string; body?: string } = {};
      if (lower === 'content-length') init = { method: 'POST', body: 'x'.repeat(Number(value)) };
      // node:http announces trailers only on a chunked body.
      if (lower === 'trailer') {
        headers.push(['Transfer-Encoding', 'chunked']);
        init = { method: 'POST', body: 'x' };
      }
      if (lower === 'host') {
        // A Host other than APP_BASE_URL's is refused before anything is forwarded (AUDIT L11).
        up.reset();
        const answer = await rawRequest(stack.broker.url, { path: '/api/open/echo', headers, ...init });
        assert.equal(answer.status, 400);
        assert.equal((JSON.parse(answer.body.toString()) as { error: string }).error, 'invalid_request');
        assert.equal(up.records.length, 0, 'nothing reached the API');
        return;
      }
      const { record } = await through('/api/open/echo', headers, init);
      if (own[lower]) {
        own[lower](record);
      } else if (lower === 'content-length') {
        // The broker may state the length of the body it actually streams, nothing else.
        assert.equal(record.bodySize, Number(value));
        assert.ok(record.headers['content-length'] === undefined || record.headers['content-length'] === String(record.bodySize));
      } else if (lower === 'transfer-encoding') {
        // The broker's HTTP client frames the body it sends its own way; a GET has none.
        assert.equal(record.headers['transfer-encoding'], undefined);
      } else {
        assert.deepEqual(rawValues(record.rawHeaders, lower), [], `${name} reached the API`);
      }
      assert.equal(record.authorizationSha256, undefined, 'auth none: no Authorization at all');
    });
  }

  test('a browser Authorization is replaced by the session token on an authenticated route', async () => {
    const browserValue = 'Bearer browser-supplied';
    const { record } = await through('/api/private/echo', [...SAME_ORIGIN, ['Cookie', alice.cookieHeader()], ['Authorization', browserValue]]);
    assert.ok(record.bearer);
    assert.notEqual(record.authorizationSha256, createHash('sha256').update(browserValue).digest('hex'));
    assert.equal(rawValues(record.rawHeaders, 'authorization').length, 1, 'one Authorization header');
    assert.equal(record.headers.cookie, undefined);
  });

  test('the broker cookie never reaches the API, also with other cookies beside it', async () => {
    const { record } = await through('/api/private/echo', [...SAME_ORIGIN, ['Cookie', `theme=dark; ${alice.cookieHeader()}; other=1`]]);
    assert.equal(record.headers.cookie, undefined);
    assert.ok(record.bearer);
  });
});

describe('towards the API: kept (header-payloads.json keptToUpstream)', () => {
  test('every ordinary request header arrives with its value', async () => {
    // The app's own Origin is the only one the CSRF check lets through.
    const headers = payloads.keptToUpstream.map(([name, value]): Pair => [name, name.toLowerCase() === 'origin' ? stack.broker.url : value]);
    const { record } = await through('/api/open/echo', [['X-CSRF', '1'], ...headers]);
    for (const [name, value] of headers) {
      assert.deepEqual(rawValues(record.rawHeaders, name.toLowerCase()), [value], `${name} should arrive unchanged`);
    }
  });
});

describe('towards the API: an allow-list (header-payloads.json notAllowListed)', () => {
  /** The app's own Origin is the only one the CSRF check lets through. */
  // Sec-Fetch-Site comes once, from SAME_ORIGIN: two values would read as cross-site.
  const notAllowListed = () =>
    payloads.notAllowListed
      .filter(([name]) => name.toLowerCase() !== 'sec-fetch-site')
      .map(([name, value]): Pair => [name, name.toLowerCase() === 'origin' ? stack.broker.url : value]);

  test('headers outside the allow-list stay behind', async () => {
    const { record } = await through('/api/open/echo', [...SAME_ORIGIN, ...notAllowListed()]);
    for (const [name] of payloads.notAllowListed) {
      // The browser's own Sec-Fetch-Site is in SAME_ORIGIN too: neither copy may pass.
      assert.deepEqual(rawValues(record.rawHeaders, name.toLowerCase()), [], `${name} reached the API`);
    }
  });

  test("a route's forwardHeaders pass them, and never an identity or mesh header", async () => {
    const listed = notAllowListed();
    const { record } = await through('/api/listed/echo', [...SAME_ORIGIN, ...listed, ...payloads.neverToUpstream.filter(([name]) => !/^(x-csrf|sec-fetch-site|content-length|transfer-encoding|trailer|expect|host|connection)$/i.test(name))]);
    for (const [name, value] of listed) assert.deepEqual(rawValues(record.rawHeaders, name.toLowerCase()), [value], `${name} should arrive`);
    assert.deepEqual(rawValues(record.rawHeaders, 'sec-fetch-site'), ['same-origin']);
    for (const [name] of payloads.neverToUpstream) {
      const lower = name.toLowerCase();
      if (['host', 'connection', 'x-forwarded-host', 'x-forwarded-proto'].includes(lower)) continue;
      assert.deepEqual(rawValues(record.rawHeaders, lower), [], `${name} reached the API`);
    }
  });
});

describe('towards the API: Connection-named headers (header-payloads.json connectionNamed)', () => {
  for (const payload of payloads.connectionNamed) {
    test(`Connection: ${payload.connection}`, async () => {
      const { record } = await through('/api/open/echo', [...SAME_ORIGIN, ['Connection', payload.connection], ...payload.headers]);
      for (const name of payload.dropped) {
        if (name === 'connection') {
          assert.ok(!String(record.headers.connection ?? '').toLowerCase().includes('x-'), 'the browser Connection value is not forwarded');
        } else {
          assert.deepEqual(rawValues(record.rawHeaders, name), [], `${name} was named in Connection and must be dropped`);
        }
      }
      for (const name of payload.kept) {
        const sent = payload.headers.find(([n]) => n.toLowerCase() === name)?.[1];
        assert.deepEqual(rawValues(record.rawHeaders, name), [sent], `${name} should arrive`);
      }
    });
  }
});

describe('towards the API: X-Forwarded-* come from configuration', () => {
  test('from APP_BASE_URL, whatever X-Forwarded-* the browser sent', async () => {
    const { record } = await through('/api/open/echo', [
      ...SAME_ORIGIN,
      ['X-Forwarded-Host', 'evil.example'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-For', '203.0.113.9'],
      ['X-Forwarded-Port', '8443'],
      ['Forwarded', 'for=203.0.113.9;host=evil.example;proto=https'],
    ]);
    assert.deepEqual(rawValues(record.rawHeaders, 'x-forwarded-host'), [brokerHost]);
    assert.deepEqual(rawValues(record.rawHeaders, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(rawValues(record.rawHeaders, 'x-forwarded-for'), []);
    assert.deepEqual(rawValues(record.rawHeaders, 'x-forwarded-port'), []);
    assert.deepEqual(rawValues(record.rawHeaders, 'forwarded'), []);
    assert.deepEqual(rawValues(record.rawHeaders, 'host'), [`${up.host}:${up.port}`]);
  });

  test('an https APP_BASE_URL is announced as such', async () => {
    stack.configure({
      APP_BASE_URL: 'https://app.example.com',
      BFF_ROUTES: JSON.stringify([{ path: '/api/open', upstream: `${up.url}/b`, auth: 'none' }]),
    });
    try {
      // The test's broker listens on localhost; the browser names the configured host.
      const { record } = await through('/api/open/echo', [...SAME_ORIGIN, ['Host', 'app.example.com'], ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', brokerHost]]);
      assert.deepEqual(rawValues(record.rawHeaders, 'x-forwarded-proto'), ['https']);
      assert.deepEqual(rawValues(record.rawHeaders, 'x-forwarded-host'), ['app.example.com']);
    } finally {
      stack.configure({});
    }
  });
});

describe('towards the browser: never returned (header-payloads.json neverToBrowser)', () => {
  for (const [name, value] of payloads.neverToBrowser) {
    const lower = name.toLowerCase();
    test(`${name}: ${value}`, async () => {
      const { answer } = await through(`/api/open/respond?headers=${encodeHeaderList([[name, value]])}&body=hello`, [
        ...SAME_ORIGIN,
        // The browser's own connection ends with this answer, so the broker's HTTP server
        // writes no Keep-Alive of its own.
        ['Connection', 'close'],
      ]);
      const values = rawValues(answer.rawHeaders, lower);
      if (lower === 'connection') assert.deepEqual(values, ['close'], "only the broker's own Connection for this hop");
      else if (lower === 'transfer-encoding') assert.ok(values.every((v) => v === 'chunked'), "only the broker's own framing");
      else assert.deepEqual(values, [], `${name} reached the browser`);
      assert.equal(answer.body.toString(), 'hello', 'the body is intact');
    });
  }

  test("the API's cookies, hop-by-hop and Connection-named headers stay behind (/set-cookie)", async () => {
    const { answer } = await through('/api/open/set-cookie', [...SAME_ORIGIN, ['Connection', 'close']]);
    assert.deepEqual(setCookies(answer.headers), []);
    assert.equal(answer.headers['x-hop'], undefined);
    assert.equal(answer.headers['x-hop-two'], undefined);
    assert.equal(answer.headers['keep-alive'], undefined);
    assert.equal(answer.headers['proxy-connection'], undefined);
    assert.equal(answer.headers.trailer, undefined);
    assert.doesNotMatch(String(answer.headers.connection), /x-hop/i);
    assert.equal(answer.headers['x-kept'], 'kept');
    assert.deepEqual(JSON.parse(answer.body.toString()), { ok: true });
  });

  test("with a session the browser gets at most the broker's own cookie, and the session survives", async () => {
    const response = await alice.api('/api/private/set-cookie');
    assert.equal(response.status, 200);
    for (const cookie of response.headers.getSetCookie()) {
      assert.doesNotMatch(cookie, /api_session|overwritten-by-the-api/);
    }
    const session = await alice.api('/auth/session');
    assert.equal(((await session.json()) as { authenticated: boolean }).authenticated, true);
  });
});

describe('towards the browser: kept (header-payloads.json keptToBrowser)', () => {
  test('every ordinary response header arrives with its value, the body byte for byte', async () => {
    const length = Number(payloads.keptToBrowser.find(([n]) => n.toLowerCase() === 'content-length')?.[1] ?? 0);
    const body = 'b'.repeat(length);
    const { answer } = await through(`/api/open/respond?headers=${encodeHeaderList(payloads.keptToBrowser)}&body=${body}`, SAME_ORIGIN);
    for (const [name, value] of payloads.keptToBrowser) {
      assert.deepEqual(rawValues(answer.rawHeaders, name.toLowerCase()), [value], `${name} should reach the browser`);
    }
    assert.equal(answer.body.toString(), body);
  });

  test('status codes pass through as the API sent them', async () => {
    for (const status of [201, 204, 400, 404, 409, 418, 429, 500, 503]) {
      await through(`/api/open/status/${status}`, SAME_ORIGIN, {}, status);
    }
  });
});

describe('Cache-Control on answers', () => {
  test('an answer obtained with the user token and no cache directive gets no-store', async () => {
    const { answer } = await through('/api/private/echo', [...SAME_ORIGIN, ['Cookie', alice.cookieHeader()]]);
    assert.equal(answer.headers['cache-control'], 'no-store');
  });

  test("an authenticated answer keeps the API's max-age for the browser alone: private, Vary: Cookie (M7)", async () => {
    const { answer } = await through('/api/private/cache', [...SAME_ORIGIN, ['Cookie', alice.cookieHeader()]]);
    assert.deepEqual(rawValues(answer.rawHeaders, 'cache-control'), ['private, max-age=60']);
    assert.deepEqual(rawValues(answer.rawHeaders, 'vary'), ['Cookie']);
  });

  test('an authenticated answer loses public, s-maxage and every CDN cache header (M7)', async () => {
    const api: Pair[] = [['Cache-Control', 'public, s-maxage=300, max-age=60'], ['Vary', 'Accept'], ...payloads.sharedCacheHeaders];
    const path = `/api/private/respond?headers=${encodeHeaderList(api)}&body=mine`;
    const { answer } = await through(path, [...SAME_ORIGIN, ['Cookie', alice.cookieHeader()]]);
    assert.deepEqual(rawValues(answer.rawHeaders, 'cache-control'), ['private, max-age=60']);
    assert.deepEqual(rawValues(answer.rawHeaders, 'vary'), ['Accept, Cookie']);
    for (const [name] of payloads.sharedCacheHeaders) assert.deepEqual(rawValues(answer.rawHeaders, name.toLowerCase()), [], `${name} reached the browser`);
    assert.equal(answer.body.toString(), 'mine');
    // Anonymous: the API's instructions are its own business.
    const anonymous = await through(`/api/open/respond?headers=${encodeHeaderList(api)}&body=all`, SAME_ORIGIN);
    assert.deepEqual(rawValues(anonymous.answer.rawHeaders, 'cache-control'), ['public, s-maxage=300, max-age=60']);
    assert.deepEqual(rawValues(anonymous.answer.rawHeaders, 'surrogate-control'), ['max-age=3600']);
  });

  test('an optional route with a session counts as authenticated; without one it does not', async () => {
    const withSession = await through('/api/maybe/echo', [...SAME_ORIGIN, ['Cookie', alice.cookieHeader()]]);
    assert.equal(withSession.answer.headers['cache-control'], 'no-store');
    const without = await through('/api/maybe/echo', SAME_ORIGIN);
    assert.equal(without.answer.headers['cache-control'], undefined);
  });

  test('an anonymous answer is left as the API sent it', async () => {
    const { answer } = await through('/api/open/echo', SAME_ORIGIN);
    assert.equal(answer.headers['cache-control'], undefined);
    const cached = await through('/api/open/cache', SAME_ORIGIN);
    assert.equal(cached.answer.headers['cache-control'], 'max-age=60');
  });
});

describe('redirects', () => {
  for (const path of ['/api/open/redirect', '/api/private/redirect']) {
    test(`${path}: the 302 is passed back, never followed`, async () => {
      // Exactly one upstream request (checked in `through`): had the broker followed the
      // Location, elsewhere.invalid would not resolve and the answer would be a 502.
      const { answer } = await through(path, [...SAME_ORIGIN, ['Cookie', alice.cookieHeader()]], {}, 302);
      assert.equal(answer.headers.location, 'http://elsewhere.invalid/');
      assert.equal(answer.body.length, 0);
    });
  }
});
