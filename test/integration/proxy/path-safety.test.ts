/**
 * Path safety over real HTTP (CONTRACT.md, "Route table"; path traversal and SSRF
 * through a reverse proxy, CWE-22 / CWE-918). Every payload of
 * test/fixtures/path-payloads.json goes to the broker as a raw request-target — node:http
 * with the path as written, or bytes on a socket where no HTTP client would send it —
 * under a route whose upstream records everything it receives. A second upstream, on
 * another port and in no route, is the canary: it must never receive anything.
 *
 * What the broker can see of a raw target depends on the URL parser in front of it
 * (WHATWG, as in Next.js): it resolves `.`/`..` and `%2e` segments, turns `\` into `/`,
 * drops a fragment and percent-encodes `"<>` and the like before the route table is
 * consulted. So each payload is judged by what arrives:
 *   - arrives verbatim under the route → 400 invalid_request, nothing forwarded;
 *   - arrives verbatim outside the route (no segment boundary) → 404 not_found, nothing forwarded;
 *   - holds bytes the HTTP server refuses (space, controls, non-ASCII) → 400, nothing forwarded;
 *   - rewritten by the URL parser (or split into path and query at a `?`) → refused as
 *     above, or forwarded exactly once, to the route's upstream, as the canonical path
 *     under its base with nothing left to decode.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { getConfig } from '../../../lib/config/load.ts';
import { handleProxy } from '../../../lib/proxy/handler.ts';
import { getStore } from '../../../lib/stores/index.ts';
import { startStack, type Stack } from '../../helpers/stack.ts';
import { isSendablePath, rawRequest, rawSocketRequest } from '../../helpers/raw-http.ts';
import { startUpstream, type TestUpstream, type UpstreamRecord } from '../../helpers/upstream.ts';

const payloads = JSON.parse(readFileSync(new URL('../../fixtures/path-payloads.json', import.meta.url), 'utf8')) as {
  refused: string[];
  allowed: string[];
};

const ROUTE = '/api/up';
const BASE = '/base';

let stack: Stack;
let up: TestUpstream;
let canary: TestUpstream;
let cookie: string;

before(async () => {
  up = await startUpstream();
  canary = await startUpstream();
  stack = await startStack({
    env: { BFF_ROUTES: JSON.stringify([{ path: ROUTE, upstream: `${up.url}${BASE}`, auth: 'required' }]) },
  });
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  // With a live session, a forwarded request would succeed: every refusal below is the path's doing.
  cookie = browser.cookieHeader();
});

after(async () => {
  await stack?.close();
  await up?.close();
  await canary?.close();
});

interface Outcome {
  status: number;
  /** The broker's JSON error code, when the answer was one. */
  error: string | undefined;
  forwarded: UpstreamRecord[];
}

async function send(target: string, extraHeaders: Array<[string, string]> = []): Promise<Outcome> {
  up.reset();
  const headers: Array<[string, string]> = [['X-CSRF', '1'], ['Sec-Fetch-Site', 'same-origin'], ['Cookie', cookie], ...extraHeaders];
  let status: number;
  let body: string;
  if (isSendablePath(target)) {
    const answer = await rawRequest(stack.broker.url, { path: target, headers });
    status = answer.status;
    body = answer.body.toString('utf8');
  } else {
    const head = [`GET ${target} HTTP/1.1`, `Host: ${new URL(stack.broker.url).host}`, ...headers.map(([n, v]) => `${n}: ${v}`)];
    const answer = await rawSocketRequest(stack.broker.port, head.join('\r\n'));
    status = answer.status;
    body = answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4);
  }
  let error: string | undefined;
  try {
    error = (JSON.parse(body) as { error?: string }).error;
  } catch {
    error = undefined;
  }
  return { status, error, forwarded: [...up.records] };
}

const show = (value: string) => JSON.stringify(value);

/** Bytes outside printable ASCII in the request-target: HTTP/1.1 servers refuse them (RFC 9112 §3.2). */
const NOT_PRINTABLE_ASCII = /[^\x21-\x7e]/;

/** An upstream request-target under the base, with nothing a server could still decode into a way out. */
function assertCleanUnderBase(url: string, payload: string): void {
  const [path = '', ...query] = url.split('?');
  assert.ok(path === BASE || path.startsWith(`${BASE}/`), `${show(payload)} forwarded outside the base: ${show(url)}`);
  const segments = path.slice(1).split('/');
  segments.forEach((segment, i) => {
    assert.ok(segment !== '.' && segment !== '..', `${show(payload)} forwarded with a dot segment: ${show(url)}`);
    assert.ok(segment !== '' || i === segments.length - 1, `${show(payload)} forwarded with an empty segment: ${show(url)}`);
  });
  assert.doesNotMatch(path, /%(2e|2f|5c|25|00)|\\|[\x00-\x20\x7f]/i, `${show(payload)} forwarded with something left to decode: ${show(url)}`);
  assert.ok(query.length <= 1);
}

function assertRefused(outcome: Outcome, payload: string, expected: { status: number; error?: string }): void {
  assert.deepEqual(
    outcome.forwarded.map((r) => r.url),
    [],
    `${show(payload)} must not be forwarded`,
  );
  assert.equal(outcome.status, expected.status, `${show(payload)} answered ${outcome.status} ${outcome.error ?? ''}`);
  if (expected.error) assert.equal(outcome.error, expected.error, show(payload));
}

describe('refused payloads of test/fixtures/path-payloads.json, sent raw under a route', () => {
  const tally = { verbatim: 0, outsideRoute: 0, unparseable: 0, rewrittenRefused: 0, rewrittenForwarded: 0 };

  for (const payload of payloads.refused) {
    test(show(payload), async () => {
      const target = `${ROUTE}${payload}`;
      const outcome = await send(target);

      if (NOT_PRINTABLE_ASCII.test(target)) {
        tally.unparseable++;
        // Refused by the HTTP server before the broker's code, or by the broker: never forwarded.
        assertRefused(outcome, payload, { status: 400 });
        return;
      }

      const parsed = new URL(target, 'http://broker.invalid');
      const seen = parsed.pathname + parsed.search;
      const underRoute = (path: string) => path === ROUTE || path.startsWith(`${ROUTE}/`);

      // A `?` in a request-target starts the query: on the wire `/a?x=1` is the path `/a`.
      if (seen === target && !payload.includes('?')) {
        if (underRoute(parsed.pathname)) {
          tally.verbatim++;
          assertRefused(outcome, payload, { status: 400, error: 'invalid_request' });
        } else {
          tally.outsideRoute++;
          assertRefused(outcome, payload, { status: 404, error: 'not_found' });
        }
        return;
      }

      // The URL parser rewrote the target (or `?` made a query of it) before any route was
      // chosen: the broker works on the canonical URL, which it must refuse or forward
      // unchanged and under the base.
      if (outcome.forwarded.length === 0) {
        tally.rewrittenRefused++;
        assert.ok(
          (outcome.status === 400 && outcome.error === 'invalid_request') || (outcome.status === 404 && outcome.error === 'not_found'),
          `${show(payload)} (seen as ${show(seen)}) answered ${outcome.status} ${outcome.error ?? ''}`,
        );
        return;
      }
      tally.rewrittenForwarded++;
      assert.ok(underRoute(parsed.pathname), `${show(payload)} seen as ${show(seen)} left the route yet was forwarded`);
      assert.equal(outcome.forwarded.length, 1);
      const forwarded = outcome.forwarded[0] as UpstreamRecord;
      assert.equal(forwarded.url, `${BASE}${parsed.pathname.slice(ROUTE.length)}${parsed.search}`, `${show(payload)} forwarded as it was seen`);
      assertCleanUnderBase(forwarded.url, payload);
      assert.equal(outcome.status, 200);
    });
  }

  test('no refused payload reached the canary, and most were refused as sent', (t) => {
    assert.deepEqual(canary.records, []);
    t.diagnostic(`tally: ${JSON.stringify(tally)}`);
    const total = Object.values(tally).reduce((a, b) => a + b, 0);
    assert.equal(total, payloads.refused.length);
    assert.ok(tally.verbatim >= 60, `at least 60 payloads reach the proxy verbatim and are refused (got ${tally.verbatim})`);
  });
});

describe('allowed payloads are forwarded unchanged', () => {
  for (const payload of payloads.allowed) {
    test(show(payload), async () => {
      const outcome = await send(`${ROUTE}${payload}`);
      assert.equal(outcome.status, 200, `${show(payload)} answered ${outcome.status} ${outcome.error ?? ''}`);
      assert.deepEqual(
        outcome.forwarded.map((r) => r.url),
        [`${BASE}${payload}`],
      );
    });
  }
});

describe('SSRF: nothing is ever sent to a host outside the table', () => {
  const attempts = (host: string): string[] => [
    `${ROUTE}//${host}/x`,
    `${ROUTE}///${host}/x`,
    `${ROUTE}/%2F%2F${host}/x`,
    `${ROUTE}/%2f${host}`,
    `${ROUTE}/http://${host}/x`,
    `${ROUTE}/http:%2F%2F${host}/x`,
    `${ROUTE}/http:/%2F${host}/x`,
    `${ROUTE}/..%2F..%2F${host}`,
    `${ROUTE}/%2e%2e/%2e%2e/${host}/x`,
    `${ROUTE}/\\\\${host}/x`,
    `${ROUTE}\\\\${host}/x`,
    `${ROUTE}/%5C%5C${host}/x`,
    `${ROUTE}/@${host}/x`,
    `${ROUTE}/x@${host}`,
    `${ROUTE}/;@${host}/x`,
    `${ROUTE}/%40${host}/x`,
    `${ROUTE}?@${host}/x`,
    `${ROUTE}?url=http://${host}/x`,
    `${ROUTE}/%0d%0aHost:%20${host}`,
  ];

  test('path payloads naming the canary: refused or sent to the route upstream, never to the canary', async () => {
    const host = `127.0.0.1:${canary.port}`;
    for (const target of [...attempts(host), ...attempts(`localhost:${canary.port}`)]) {
      const outcome = await send(target);
      for (const record of outcome.forwarded) assertCleanUnderBase(record.url, target);
      assert.ok(outcome.status !== 500 && outcome.status !== 502, `${show(target)} answered ${outcome.status}`);
    }
    assert.deepEqual(canary.records, []);
  });

  test('X-Forwarded-Host and Forwarded naming the canary change nothing; a Host naming it is refused', async () => {
    const host = `127.0.0.1:${canary.port}`;
    const refused = await send(`${ROUTE}/x`, [['Host', host]]);
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.forwarded, []);
    const outcome = await send(`${ROUTE}/x`, [
      ['X-Forwarded-Host', host],
      ['X-Forwarded-Proto', 'http'],
      ['Forwarded', `host=${host};proto=http`],
      ['X-Original-URL', `http://${host}/x`],
    ]);
    assert.equal(outcome.status, 200);
    assert.deepEqual(
      outcome.forwarded.map((r) => [r.url, r.headers.host]),
      [[`${BASE}/x`, `${up.host}:${up.port}`]],
    );
    assert.deepEqual(canary.records, []);
  });

  test('a request whose URL names another origin is still sent to the route upstream only', async () => {
    // The proxy takes only the path and query of the request URL: an absolute-form
    // request-target (or a framework that trusts Host) cannot pick the destination.
    up.reset();
    const request = new Request(`http://127.0.0.1:${canary.port}${ROUTE}/x?y=1`, {
      headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', cookie },
    });
    const response = await handleProxy(request, getConfig(), getStore());
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.deepEqual(
      up.records.map((r) => r.url),
      [`${BASE}/x?y=1`],
    );
    assert.deepEqual(canary.records, []);
  });
});
