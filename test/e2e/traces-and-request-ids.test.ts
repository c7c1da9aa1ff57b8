/**
 * Logs and traces of the production server (issue 10, items 1 and 3), through `npm start`
 * (the front door), a real oidc-provider, the real demo APIs and a real OTLP/HTTP receiver
 * started here (a node:http server decoding what the OpenTelemetry exporter sends: OTLP
 * JSON). Two stacks run under `next start` (the route-handler host): OTEL unset, and set.
 *   - X-Request-Id: a well-formed id is reflected and reaches the API; a malformed one is
 *     replaced; one is generated when absent; refusals (401/403/404 JSON) carry it; the
 *     broker's log lines for the request carry it.
 *   - Spans: request span → refresh span and upstream span (parent ids), the API received a
 *     `traceparent` of the request's trace naming the upstream span, a browser's
 *     `traceparent` is a link, never the parent; no attribute holds a secret.
 *   - OTEL unset: nothing is exported, and the broker adds no trace header.
 *   - under next start with OTEL set: the route handlers' spans, and Next.js's own spans
 *     without the request-target (the callback's code and state).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;
const CLIENT_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_TRACEPARENT = `00-${CLIENT_TRACE_ID}-00f067aa0ba902b7-01`;

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  links?: Array<{ traceId: string; spanId: string; attributes?: OtlpAttribute[] }>;
}

/** A local OTLP/HTTP receiver: keeps every request body and every span it decodes. */
interface Receiver {
  url: string;
  bodies: string[];
  spans: OtlpSpan[];
  close(): Promise<void>;
}

async function startReceiver(port = 0): Promise<Receiver> {
  const bodies: string[] = [];
  const spans: OtlpSpan[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      bodies.push(`${req.method} ${req.url} ${req.headers['content-type']}\n${text}`);
      if (req.url === '/v1/traces' && (req.headers['content-type'] ?? '').includes('json')) {
        const decoded = JSON.parse(text) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };
        for (const resource of decoded.resourceSpans ?? []) for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    bodies,
    spans,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function attribute(span: OtlpSpan, key: string): string | number | boolean | undefined {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  if (!value) return undefined;
  return value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue));
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Echo {
  subject: string;
  correlation: { requestId: string | null; traceparent: string | null; tracestate: string | null };
}

describe('through npm start with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  let receiver: Receiver;
  let stack: ProductionStack;
  let alice: BrowserClient;
  const cookieValues = new Set<string>();

  before(async () => {
    receiver = await startReceiver();
    stack = await startProductionStack({
      npmStart: true,
      liveRoute: true,
      // RATE_LIMIT_AUTH=4: alice's sign-in takes two, the refusal test below exhausts the rest.
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'cloakroom-e2e', RATE_LIMIT_AUTH: '4' },
    });
    alice = new BrowserClient(stack.url);
    const callback = await alice.signIn('alice');
    for (const header of callback.headers.getSetCookie()) {
      const pair = header.split(';', 1)[0] ?? '';
      cookieValues.add(pair.slice(pair.indexOf('=') + 1));
    }
  });
  after(async () => {
    await stack?.close();
    await receiver?.close();
  });

  test('a well-formed X-Request-Id is reflected on the answer and reaches the API', async () => {
    const response = await alice.api('/api/demo/items?x=1', { headers: { 'x-request-id': 'client-req.42:a_b' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-request-id'), 'client-req.42:a_b');
    const echo = (await response.json()) as Echo;
    assert.equal(echo.correlation.requestId, 'client-req.42:a_b');
  });

  test('a malformed X-Request-Id is replaced, on the answer and towards the API alike; one is generated when absent', async () => {
    for (const sent of ['x'.repeat(129), 'two words', 'a,b', '{"event":"forged"}', 'caf\u00e9']) {
      const response = await alice.api('/api/demo/items', { headers: { 'x-request-id': sent } });
      assert.equal(response.status, 200, sent);
      const answered = response.headers.get('x-request-id') ?? '';
      assert.match(answered, UUID, sent);
      assert.equal(((await response.json()) as Echo).correlation.requestId, answered, `${sent}: the API gets the broker's id`);
    }
    const generated = await alice.api('/api/demo/items');
    const id = generated.headers.get('x-request-id') ?? '';
    assert.match(id, UUID);
    assert.equal(((await generated.json()) as Echo).correlation.requestId, id);
    const again = await alice.api('/api/demo/items');
    assert.notEqual(again.headers.get('x-request-id'), id, 'one id per request');
    await again.body?.cancel();
  });

  test("the broker's refusals carry X-Request-Id too (401, 403, 404, 405; front door and lib handlers)", async () => {
    const anonymous = new BrowserClient(stack.url);
    const refusals: Array<[string, Promise<Response>, number, string]> = [
      ['401 without a session', anonymous.api('/api/demo/x', { headers: { 'x-request-id': 'r-401' } }), 401, 'unauthenticated'],
      ['403 without X-CSRF', alice.fetch('/api/demo/x', { headers: { 'x-request-id': 'r-403' } }), 403, 'csrf'],
      ['404 no route', alice.api('/api/nothing/here', { headers: { 'x-request-id': 'r-404' } }), 404, 'not_found'],
      ['404 unknown /ops path', alice.fetch('/ops/nothing', { headers: { 'x-request-id': 'r-404-ops' } }), 404, 'not_found'],
      ['405 GET /auth/logout', alice.fetch('/auth/logout', { headers: { 'x-request-id': 'r-405' } }), 405, 'method_not_allowed'],
    ];
    for (const [what, pending, status, code] of refusals) {
      const response = await pending;
      assert.equal(response.status, status, what);
      assert.equal(((await response.json()) as { error: string }).error, code, what);
      const sent = what.startsWith('404 unknown') ? 'r-404-ops' : `r-${status}`;
      assert.equal(response.headers.get('x-request-id'), sent, what);
    }
    const health = await fetch(`${stack.url}/healthz`);
    assert.match(health.headers.get('x-request-id') ?? '', UUID, '/healthz');
  });

  test('log lines written for a request carry its request id', async () => {
    // An encoded slash is refused and logged (proxy_path_refused) inside the request.
    const response = await alice.api('/api/demo/a%2Fb', { headers: { 'x-request-id': 'log-correlated-1' } });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('x-request-id'), 'log-correlated-1');
    const line = await until('the refusal in the log', () =>
      stack
        .serverStderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.event === 'proxy_path_refused' && l.requestId === 'log-correlated-1'),
    );
    assert.equal(line.level, 'warn');
  });

  test('a rate-limit refusal is logged with the network (/24 or /48), never the address, and carries X-Request-Id', async () => {
    let refused: Response | undefined;
    for (let i = 0; i < 6 && !refused; i++) {
      const response = await fetch(`${stack.url}/auth/login`, { redirect: 'manual', headers: { 'x-request-id': `rl-${i}` } });
      if (response.status === 429) refused = response;
      else await response.body?.cancel();
    }
    assert.ok(refused, 'the sign-in budget ran out');
    const id = refused.headers.get('x-request-id') ?? '';
    assert.match(id, /^rl-\d$/);
    assert.equal(((await refused.json()) as { error: string }).error, 'rate_limited');
    const raw = await until('the refusal in the log', () => stack.serverStderr().split('\n').find((l) => l.includes('"event":"rate_limited"') && l.includes(`"requestId":"${id}"`)));
    const line = JSON.parse(raw) as Record<string, unknown>;
    assert.equal(line.scope, 'auth');
    assert.match(String(line.network), /\/(24|48)$/);
    for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) assert.ok(!raw.includes(`"${address}"`) && !raw.includes(`${address},`), `the line holds ${address}: ${raw}`);
  });

  test('the WebSocket handshake passes the request id and the trace context to the API', async () => {
    const ws = new WebSocket(`${stack.url.replace(/^http/, 'ws')}/api/live/socket`, { headers: { origin: stack.url, cookie: alice.cookieHeader(), 'x-request-id': 'ws-req-1' }, perMessageDeflate: false });
    const hello = await new Promise<{ correlation: Echo['correlation'] }>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('message', (data: Buffer) => resolve((JSON.parse(data.toString()) as { hello: { correlation: Echo['correlation'] } }).hello));
    });
    ws.terminate();
    assert.equal(hello.correlation.requestId, 'ws-req-1');
    const [, traceId, spanId] = TRACEPARENT.exec(hello.correlation.traceparent ?? '') ?? [];
    assert.ok(traceId && spanId, `a traceparent reached the API: ${hello.correlation.traceparent}`);
    const span = await until('the handshake span', () => receiver.spans.find((s) => s.spanId === spanId));
    assert.equal(span.name, 'GET upstream');
    assert.equal(attribute(span, 'cloakroom.route'), '/api/live');
    assert.equal(attribute(span, 'http.response.status_code'), 101);
    const upgrade = await until('the upgrade span', () => receiver.spans.find((s) => s.spanId === span.parentSpanId));
    assert.equal(upgrade.name, 'GET /api/live');
    assert.equal(upgrade.kind, 2, 'SERVER');
    assert.equal(upgrade.traceId, traceId);
  });

  test('a refused WebSocket upgrade carries X-Request-Id too', async () => {
    const ws = new WebSocket(`${stack.url.replace(/^http/, 'ws')}/api/live/socket`, { headers: { origin: stack.url, 'x-request-id': 'ws-refused-1' }, perMessageDeflate: false });
    const answer = await new Promise<{ status: number; id: unknown }>((resolve, reject) => {
      ws.once('unexpected-response', (_request, response) => {
        response.resume();
        resolve({ status: response.statusCode as number, id: response.headers['x-request-id'] });
      });
      ws.once('open', () => reject(new Error('the upgrade was accepted without a session')));
      ws.once('error', () => undefined);
    });
    ws.terminate();
    assert.deepEqual(answer, { status: 401, id: 'ws-refused-1' });
  });

  test('span tree: request span → refresh span and upstream span; the API joined the trace; a browser traceparent is only a link', async () => {
    // The reports API needs a token for its own audience: obtained by a refresh (RFC 8707 resource).
    const response = await alice.api('/api/reports/monthly?code=not-a-real-code-xyz', { headers: { traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=secret-ish' } });
    assert.equal(response.status, 200);
    const echo = (await response.json()) as Echo;
    const [, traceId, upstreamSpanId] = TRACEPARENT.exec(echo.correlation.traceparent ?? '') ?? [];
    assert.ok(traceId && upstreamSpanId, `the API received a traceparent: ${echo.correlation.traceparent}`);
    assert.notEqual(traceId, CLIENT_TRACE_ID, "the browser's trace id is not adopted");
    assert.equal(echo.correlation.tracestate, null, "the browser's tracestate does not travel with the broker's context");

    const request = await until('the request span', () => receiver.spans.find((s) => s.traceId === traceId && s.kind === 2));
    const upstream = await until('the upstream span', () => receiver.spans.find((s) => s.spanId === upstreamSpanId));
    const refresh = await until('the refresh span', () => receiver.spans.find((s) => s.traceId === traceId && s.name === 'token refresh'));

    assert.equal(request.name, 'GET /api/reports', 'named from the route table, not the path');
    assert.equal(request.parentSpanId || undefined, undefined, 'the request span is a root');
    assert.equal(attribute(request, 'http.route'), '/api/reports');
    assert.equal(attribute(request, 'http.request.method'), 'GET');
    assert.equal(attribute(request, 'http.response.status_code'), 200);
    assert.deepEqual(
      (request.links ?? []).map((l) => l.traceId),
      [CLIENT_TRACE_ID],
      "the browser's context is a link",
    );

    assert.equal(upstream.traceId, traceId);
    assert.equal(upstream.parentSpanId, request.spanId, 'upstream span is the request span’s child');
    assert.equal(upstream.kind, 3, 'CLIENT');
    assert.equal(attribute(upstream, 'cloakroom.route'), '/api/reports');
    assert.equal(attribute(upstream, 'http.response.status_code'), 200);

    assert.equal(refresh.parentSpanId, request.spanId, 'refresh span is the request span’s child');
    assert.equal(attribute(refresh, 'cloakroom.refresh.outcome'), 'ok');
  });

  test('refusals are spans with the error code; the export is OTLP JSON with the service name', async () => {
    const anonymous = new BrowserClient(stack.url);
    const response = await anonymous.api('/api/demo/x');
    assert.equal(response.status, 401);
    await response.body?.cancel();
    const span = await until('the refusal span', () => receiver.spans.find((s) => attribute(s, 'cloakroom.error_code') === 'unauthenticated' && s.name === 'GET /api/demo'));
    assert.equal(attribute(span, 'http.response.status_code'), 401);
    assert.ok(receiver.bodies.every((b) => b.startsWith('POST /v1/traces application/json')), 'OTLP/HTTP JSON');
    assert.ok(receiver.bodies.some((b) => b.includes('"cloakroom-e2e"')), 'OTEL_SERVICE_NAME');
  });

  test('no span attribute holds a secret, a query, a user or an address; the logs hold none either', async () => {
    // Wait for the last batch.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const exported = receiver.bodies.join('\n');
    assert.ok(stack.issuedTokens.length >= 2, 'tokens were issued');
    for (const cookie of alice.cookieHeader().split('; ')) cookieValues.add(cookie.slice(cookie.indexOf('=') + 1));
    const me = (await (await alice.api('/api/demo/who')).json()) as Echo;
    const secrets: Array<[string, string]> = [
      ...stack.issuedTokens.map((t, i): [string, string] => [`issued token #${i}`, t]),
      ['the client secret', stack.clientSecret],
      ['the session secret', stack.sessionSecret],
      ['the query value', 'not-a-real-code-xyz'],
      ["the browser's tracestate", 'secret-ish'],
      ...[...cookieValues].filter((v) => v.length >= 16).map((v, i): [string, string] => [`cookie value #${i}`, v]),
    ];
    for (const [what, secret] of secrets) assert.ok(!exported.includes(secret), `the exported spans hold ${what}`);
    // `server.address` names the API's configured host (here 127.0.0.1 too): configuration, not the user's address.
    const values = receiver.spans.flatMap((s) => (s.attributes ?? []).filter((a) => a.key !== 'server.address').map((a) => `${a.key}=${String(a.value.stringValue ?? a.value.intValue ?? a.value.boolValue)}`));
    for (const banned of [me.subject, '127.0.0.1', '::1', '::ffff:127.0.0.1', '/api/reports/monthly', '/api/demo/items']) {
      assert.ok(!values.some((v) => v.includes(banned)), `an attribute holds ${banned}: ${values.filter((v) => v.includes(banned)).join(' ')}`);
    }
    assert.ok(new Set(receiver.spans.flatMap((s) => (s.attributes ?? []).filter((a) => a.key === 'server.address').map((a) => a.value.stringValue))).size >= 1);
    assert.ok(!values.some((v) => v.includes('?')), 'no attribute holds a query string');

    const logs = stack.serverStderr() + stack.serverStdout();
    for (const [what, secret] of secrets) assert.ok(!logs.includes(secret), `the logs hold ${what}`);
    assert.ok(logs.includes('"event":"tracing_started"'), 'the SDK said it started');
  });
});

describe('under next start (the route-handler host) with OTEL unset', () => {
  let stack: ProductionStack;
  let receiver: Receiver | undefined;

  before(async () => {
    // The exporter's default target: if anything were exported with OTEL unset, it would land here.
    receiver = await startReceiver(4318).catch(() => undefined);
    stack = await startProductionStack({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: undefined, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined, OTEL_SDK_DISABLED: undefined } });
  });
  after(async () => {
    await stack?.close();
    await receiver?.close();
  });

  test('X-Request-Id is reflected on answers and refusals, and reaches the API; no trace header is added, nothing is exported', async () => {
    const alice = new BrowserClient(stack.url);
    await alice.signIn('alice');
    const response = await alice.api('/api/demo/items', { headers: { 'x-request-id': 'next-start-1' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-cloakroom-host'), null, 'answered by the route handler, not the front door');
    assert.equal(response.headers.get('x-request-id'), 'next-start-1');
    const echo = (await response.json()) as Echo;
    assert.equal(echo.correlation.requestId, 'next-start-1');
    assert.equal(echo.correlation.traceparent, null, 'no traceparent from a broker without tracing');

    const refused = await new BrowserClient(stack.url).api('/api/demo/x', { headers: { 'x-request-id': 'bad id' } });
    assert.equal(refused.status, 401);
    assert.match(refused.headers.get('x-request-id') ?? '', UUID);
    await refused.body?.cancel();

    await new Promise((resolve) => setTimeout(resolve, 1_000));
    if (receiver) assert.deepEqual(receiver.bodies, [], 'nothing was exported');
    assert.ok(!stack.serverStderr().includes('tracing_started'));
  });
});

describe('under next start (the route-handler host) with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set', () => {
  let stack: ProductionStack;
  let receiver: Receiver;

  before(async () => {
    receiver = await startReceiver();
    stack = await startProductionStack({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`, OTEL_BSP_SCHEDULE_DELAY: '100' } });
  });
  after(async () => {
    await stack?.close();
    await receiver?.close();
  });

  test("the route handlers' spans are exported, the API joins the trace, and no span (Next.js's own included) holds the callback's query or a secret", async () => {
    const alice = new BrowserClient(stack.url);
    await alice.signIn('alice');
    const response = await alice.api('/api/demo/items?x=secret-query-value');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-cloakroom-host'), null, 'answered by the route handler');
    const echo = (await response.json()) as Echo;
    const [, traceId, upstreamSpanId] = TRACEPARENT.exec(echo.correlation.traceparent ?? '') ?? [];
    assert.ok(traceId && upstreamSpanId, `the API received a traceparent: ${echo.correlation.traceparent}`);
    const request = await until('the request span', () => receiver.spans.find((s) => s.traceId === traceId && s.name === 'GET /api/demo'));
    const upstream = await until('the upstream span', () => receiver.spans.find((s) => s.spanId === upstreamSpanId));
    assert.equal(upstream.parentSpanId, request.spanId);
    await until('the callback span', () => receiver.spans.find((s) => s.name === 'GET /auth/callback' && s.kind === 2));

    await new Promise((resolve) => setTimeout(resolve, 500));
    const exported = receiver.bodies.join('\n');
    for (const [what, secret] of [...stack.issuedTokens.map((t, i): [string, string] => [`issued token #${i}`, t]), ['the client secret', stack.clientSecret], ['the query value', 'secret-query-value']] as Array<[string, string]>) {
      assert.ok(!exported.includes(secret), `the exported spans hold ${what}`);
    }
    const values = receiver.spans.flatMap((s) => (s.attributes ?? []).map((a) => `${a.key}=${String(a.value.stringValue ?? '')}`));
    assert.ok(!values.some((v) => v.includes('?') || /[?&](code|state|iss)=/.test(v)), `an attribute holds a query: ${values.filter((v) => v.includes('?')).join(' ')}`);
    assert.ok(!values.some((v) => v.startsWith('http.target=')), 'http.target is scrubbed');
  });
});
