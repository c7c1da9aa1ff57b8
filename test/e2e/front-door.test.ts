/**
 * The broker's own front door (`npm start`, server/front-door.ts), black-box, against the
 * production build: the broker's endpoints are answered from node:http (not Next's route
 * runtime), the query reaches a real upstream byte for byte, TRACE/TRACK/CONNECT are 405
 * and never reach it, pages and static assets are still Next's, a server-sent-events
 * answer arrives as it is sent, and a client that goes away cancels the upstream call.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { holdAnswer } from '../helpers/held-answer.ts';
import { rawRequest, rawSocketRequest } from '../helpers/raw-http.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const QUERIES = JSON.parse(readFileSync(new URL('../fixtures/query-payloads.json', import.meta.url), 'utf8')) as { forwarded: string[]; refused: string[] };
const API = [['X-CSRF', '1']] as const;
const FRONT_DOOR = 'x-cloakroom-host';

let stack: ProductionStack;
let upstream: TestUpstream;

before(async () => {
  upstream = await startUpstream();
  const routes = [
    { path: '/api/open', upstream: `${upstream.url}/v1`, auth: 'none', methods: ['GET', 'HEAD', 'POST'] },
    { path: '/api/files', upstream: `${upstream.url}/files`, auth: 'none', timeoutMs: 1_000 },
  ];
  stack = await startProductionStack({ npmStart: true, env: { BFF_ROUTES: JSON.stringify(routes) } });
});
after(async () => {
  await stack?.close();
  await upstream?.close();
});

describe('the query reaches the API byte for byte through npm start', () => {
  for (const query of QUERIES.forwarded) {
    test(`forwards ${JSON.stringify(query)} unchanged`, async () => {
      upstream.reset();
      const answer = await rawRequest(stack.url, { path: `/api/open/echo${query}`, headers: [...API, ['Host', `localhost:${stack.port}`]] });
      assert.equal(answer.status, 200, answer.body.toString());
      assert.equal(answer.headers[FRONT_DOOR], 'front-door');
      assert.equal(upstream.records.length, 1);
      // What a WHATWG URL parser would have made of it differs for most of these: the
      // upstream must see the bytes the client sent, not a rebuilt URL.
      assert.equal(upstream.records[0]?.url, `/v1/echo${query}`);
    });
  }
  for (const query of QUERIES.refused) {
    test(`refuses ${JSON.stringify(query)} with 400, never forwarding it`, async () => {
      upstream.reset();
      // Node's own parser refuses these (RFC 9112 §3.2); the front door answers its 400 with the contract's body.
      const answer = await rawRequest(stack.url, { path: `/api/open/echo${query}`, headers: [...API, ['Host', `localhost:${stack.port}`]] });
      assert.equal(answer.status, 400);
      assert.equal(JSON.parse(answer.body.toString()).error, 'invalid_request');
      assert.equal(upstream.records.length, 0);
    });
  }
});

describe('methods that are never forwarded', () => {
  for (const method of ['TRACE', 'TRACK']) {
    test(`${method} /api/open/echo is 405 with Allow and never reaches the API`, async () => {
      upstream.reset();
      const answer = await rawSocketRequest(stack.port, `${method} /api/open/echo HTTP/1.1\r\nHost: localhost:${stack.port}\r\nX-CSRF: 1`);
      assert.equal(answer.status, 405, answer.text);
      assert.match(answer.text, /\r\nallow: [A-Z, ]*GET/i);
      assert.match(answer.text, /\{"error":"method_not_allowed"\}$/);
      assert.equal(upstream.records.length, 0);
    });
  }

  test('CONNECT is a real 405 answer, not a hanging or dropped socket, and never reaches the API', async () => {
    upstream.reset();
    const answer = await rawSocketRequest(stack.port, `CONNECT ${upstream.host}:${upstream.port} HTTP/1.1\r\nHost: ${upstream.host}:${upstream.port}`);
    assert.equal(answer.status, 405, answer.text);
    assert.match(answer.text, /\r\nallow: /i);
    assert.match(answer.text, /\{"error":"method_not_allowed"\}$/);
    assert.equal(upstream.records.length, 0);
  });

  test('TRACE on a page path is 405 too, not Next.js\'s 500', async () => {
    const answer = await rawSocketRequest(stack.port, `TRACE / HTTP/1.1\r\nHost: localhost:${stack.port}`);
    assert.equal(answer.status, 405, answer.text);
  });

  test('HEAD answers the headers without a body', async () => {
    const answer = await rawRequest(stack.url, { method: 'HEAD', path: '/api/open/echo', headers: API });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.length, 0);
    assert.equal(answer.headers[FRONT_DOOR], 'front-door');
  });
});

describe('the broker endpoints are the front door\'s, pages are Next\'s', () => {
  test('/healthz, /auth/session, /readyz and an unknown /ops/ path come from the front door', async () => {
    for (const [path, status] of [['/healthz', 200], ['/readyz', 200], ['/ops/nothing', 404]] as const) {
      const response = await fetch(`${stack.url}${path}`);
      assert.equal(response.status, status, path);
      assert.equal(response.headers.get(FRONT_DOOR), 'front-door', path);
      assert.equal(response.headers.get('cache-control'), 'no-store', path);
    }
    const session = await fetch(`${stack.url}/auth/session`, { headers: { 'x-csrf': '1' } });
    assert.deepEqual(await session.json(), { authenticated: false });
    assert.equal(session.headers.get(FRONT_DOOR), 'front-door');
    const logout = await fetch(`${stack.url}/auth/logout`);
    assert.equal(logout.status, 405);
    assert.equal(logout.headers.get('allow'), 'POST');
  });

  test('the start page and one of its static assets are served by Next.js', async () => {
    const page = await fetch(`${stack.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get(FRONT_DOOR), null);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    const asset = /["'](\/_next\/static\/[^"']+\.(?:js|css))["']/.exec(html)?.[1];
    assert.ok(asset, 'the page links a /_next/static asset');
    const file = await fetch(`${stack.url}${asset}`);
    assert.equal(file.status, 200);
    assert.ok((await file.arrayBuffer()).byteLength > 0);
  });

  test('an upgrade on a route without "websocket": true gets a real 404 answer and the socket ends, never reaching the API', async () => {
    const socket = connect(stack.port, '127.0.0.1');
    socket.write(
      `GET /api/open/echo HTTP/1.1\r\nHost: localhost:${stack.port}\r\nOrigin: ${stack.url}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.setTimeout(3_000, () => socket.destroy(new Error('the upgrade was left hanging')));
    await new Promise<void>((resolve, reject) => {
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /^HTTP\/1\.1 404 /, text);
    assert.match(text, /\{"error":"not_found"(,"message":"[^"]*")?\}$/);
    assert.equal(upstream.records.filter((r) => r.headers.upgrade).length, 0);
  });
  test('an upgrade on /_next/ gets a real 404 too in a production build (no hot reload to serve), and the server lives on', async () => {
    const socket = connect(stack.port, '127.0.0.1');
    socket.write(
      `GET /_next/webpack-hmr HTTP/1.1\r\nHost: localhost:${stack.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Next.js's production upgrade handler would leave this socket hanging.
    socket.setTimeout(2_000, () => socket.destroy(new Error('the upgrade was left hanging')));
    await new Promise<void>((resolve, reject) => {
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 404 /);
    assert.equal((await fetch(`${stack.url}/healthz`)).status, 200);
  });
});

describe('streams', () => {
  test('server-sent events arrive one by one, as the API sends them', async () => {
    const started = Date.now();
    const arrivals: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${stack.url}/api/open/sse?count=3&interval=400`, { headers: { 'x-csrf': '1', accept: 'text/event-stream' } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /text\/event-stream/);
        res.on('data', (chunk: Buffer) => {
          const events = chunk.toString().match(/^data: /gm)?.length ?? 0;
          for (let i = 0; i < events; i++) arrivals.push(Date.now() - started);
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(arrivals.length, 3);
    // Sent at 0, 400 and 800 ms: buffered delivery would bring all three at once.
    assert.ok((arrivals[2] as number) - (arrivals[0] as number) >= 600, `arrivals ${arrivals.join(', ')} ms`);
  });

  test('a client that goes away cancels the upstream call', async () => {
    upstream.reset();
    const socket = connect(stack.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`GET /api/open/hang HTTP/1.1\r\nHost: localhost:${stack.port}\r\nX-CSRF: 1\r\n\r\n`);
    const record = await upstream.waitFor((r) => r.url === '/v1/hang', 5_000);
    assert.equal(record.aborted, false);
    socket.destroy();
    const deadline = Date.now() + 3_000;
    while (!record.aborted && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(record.aborted, true, 'the upstream connection was closed when the client left');
  });

  test('a request body streams through to the API', async () => {
    upstream.reset();
    const body = Buffer.alloc(3 * 1024 * 1024, 0x62);
    const answer = await rawRequest(stack.url, { method: 'POST', path: '/api/open/upload', headers: [...API, ['Content-Type', 'application/octet-stream']], body });
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(JSON.parse(answer.body.toString()).size, body.length);
  });

  test('backpressure: a browser that stops reading has its answer cancelled and the upstream freed; one that reads gets it all', async () => {
    upstream.reset();
    // 64 MiB: far more than the socket buffers between the API and the reader hold.
    const stalled = await holdAnswer(stack.url, '/api/files/stream?kb=65536', { 'x-csrf': '1' }, { read: false });
    try {
      assert.equal(stalled.status, 200);
      const record = await upstream.waitFor((r) => r.url.startsWith('/files/stream') && r.closedAt !== undefined, 15_000);
      assert.equal(record.aborted, true, 'the front door gave up the upstream answer');
    } finally {
      stalled.close();
    }
    const reader = await holdAnswer(stack.url, '/api/files/stream?kb=4096', { 'x-csrf': '1' });
    const deadline = Date.now() + 15_000;
    while (!reader.ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(reader.received, 4096 * 1024);
  });
});
