/**
 * WebSockets through the broker and streams that end with their session (CONTRACT.md,
 * "Streams end with their session"; issue 9, points 3 and 4), through the real `npm start`
 * server, a real oidc-provider and the demo API's real WebSocket echo.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { CLIENT_ID, startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../helpers/logout-tokens.ts';
import { BrowserClient } from '../helpers/stack.ts';

const OPS_TOKEN = randomBytes(32).toString('base64url');
let stack: ProductionStack;
let wsOrigin: string;
before(async () => {
  const key = await providerSigningKey();
  stack = await startProductionStack({
    npmStart: true,
    liveRoute: true,
    // Access tokens live 4 s, renewed 1 s before their end: a socket opened later needs a refresh first.
    idp: { accessTokenTtl: 4, jwks: { keys: [key] } },
    env: { TOKEN_REFRESH_SKEW: '1', OPS_TOKEN },
  });
  wsOrigin = stack.url.replace(/^http/, 'ws');
  signingKey = key;
});
after(() => stack?.close());
let signingKey: Awaited<ReturnType<typeof providerSigningKey>>;

type Opened = { ws: WebSocket; hello: Record<string, unknown>; messages: Array<{ data: Buffer; binary: boolean }>; closed: Promise<{ code: number; at: number }> };
type Refused = { status: number; body: string; headers: Record<string, string | string[] | undefined> };

function open(path: string, headers: Record<string, string>): Promise<Opened | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${wsOrigin}${path}`, { headers, perMessageDeflate: false });
    const messages: Opened['messages'] = [];
    const closed = new Promise<{ code: number; at: number }>((done) => ws.once('close', (code) => done({ code, at: Date.now() })));
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on('end', () => resolve({ status: response.statusCode as number, body, headers: response.headers }));
    });
    ws.once('error', reject);
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (messages.length === 0 && !binary && data.toString().startsWith('{"hello"')) {
        messages.push({ data, binary });
        resolve({ ws, hello: (JSON.parse(data.toString()) as { hello: Record<string, unknown> }).hello, messages: [], closed });
        return;
      }
      messages.push({ data, binary });
    });
  });
}

function opened(result: Opened | Refused): Opened {
  if ('status' in result) assert.fail(`the upgrade was refused: ${result.status} ${result.body}`);
  return result;
}

function refused(result: Opened | Refused): Refused {
  if (!('status' in result)) {
    result.ws.terminate();
    assert.fail('the upgrade was accepted');
  }
  return result;
}

async function signedIn(): Promise<BrowserClient> {
  const browser = new BrowserClient(stack.url);
  await browser.signIn('alice');
  return browser;
}

const sameOrigin = (browser?: BrowserClient) => ({ origin: stack.url, ...(browser ? { cookie: browser.cookieHeader() } : {}) });

function nextMessage(socket: Opened): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) => socket.ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })));
}

/** An SSE stream through the proxy that never ends on its own; resolves when the broker ends it. */
async function openEvents(browser: BrowserClient): Promise<{ ended: Promise<number> }> {
  const response = await browser.api('/api/demo/events?forever', { headers: { accept: 'text/event-stream' } });
  assert.equal(response.status, 200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const ended = (async () => {
    for (;;) {
      const { done } = await reader.read();
      if (done) return Date.now();
    }
  })();
  return { ended };
}

test('an upgrade without a session is refused with a real 401 answer', async () => {
  const answer = refused(await open('/api/live/ws', sameOrigin()));
  assert.equal(answer.status, 401);
  assert.deepEqual(JSON.parse(answer.body), { error: 'unauthenticated' });
  assert.equal(answer.headers['cache-control'], 'no-store');
  assert.equal(answer.headers.connection, 'close');
});

test('a foreign or missing Origin is refused with 403 csrf, even with a session', async () => {
  const browser = await signedIn();
  const foreign = refused(await open('/api/live/ws', { origin: 'https://evil.example', cookie: browser.cookieHeader() }));
  assert.equal(foreign.status, 403);
  assert.equal((JSON.parse(foreign.body) as { error: string }).error, 'csrf');
  const missing = refused(await open('/api/live/ws', { cookie: browser.cookieHeader() }));
  assert.equal(missing.status, 403);
  assert.equal((JSON.parse(missing.body) as { error: string }).error, 'csrf');
});

test('a route without "websocket": true, and a path outside /api, refuse upgrades with 404', async () => {
  const browser = await signedIn();
  const route = refused(await open('/api/demo/ws', sameOrigin(browser)));
  assert.equal(route.status, 404);
  assert.equal((JSON.parse(route.body) as { error: string }).error, 'not_found');
  const page = refused(await open('/somewhere', sameOrigin(browser)));
  assert.equal(page.status, 404);
});

/** A hand-written upgrade request (what `ws` as a client would never send), answered in full. */
function rawUpgrade(path: string, headers: Record<string, string>): Promise<{ head: string; body: string }> {
  const { port } = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const at = text.indexOf('\r\n\r\n');
      resolve({ head: text.slice(0, at), body: text.slice(at + 4) });
    });
    const lines = [`GET ${path} HTTP/1.1`, `host: ${new URL(stack.url).host}`, 'connection: Upgrade', 'upgrade: websocket'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}

test('a malformed handshake (bad Sec-WebSocket-Key, wrong version) gets the contract\'s 400, checked before anything opens upstream', async () => {
  const browser = await signedIn();
  for (const [name, headers] of [
    ['no key', { 'sec-websocket-version': '13' }],
    ['a short key', { 'sec-websocket-key': 'c2hvcnQ=', 'sec-websocket-version': '13' }],
    ['version 8', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '8' }],
  ] as const) {
    const answer = await rawUpgrade('/api/live/ws', { ...headers, origin: stack.url, cookie: browser.cookieHeader() });
    assert.match(answer.head, /^HTTP\/1\.1 400 /, name);
    assert.match(answer.head, /cache-control: no-store/i, name);
    assert.deepEqual(JSON.parse(answer.body).error, 'invalid_request', name);
  }
});

test('the browser is told the subprotocol the API chose, and none when it was offered none', async () => {
  const browser = await signedIn();
  const withProtocols = await new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`${wsOrigin}/api/live/ws`, ['chat.v2', 'chat.v1'], { headers: sameOrigin(browser), perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
  assert.equal(withProtocols.protocol, 'chat.v2', 'the demo API picks the first it supports');
  withProtocols.terminate();
  const socket = opened(await open('/api/live/ws', sameOrigin(browser)));
  assert.equal(socket.ws.protocol, '');
  assert.equal(socket.hello.protocol, '');
  socket.ws.terminate();
});

test('an echo round trip, text and binary; the API gets the bearer token and never the cookie', async () => {
  const browser = await signedIn();
  const socket = opened(await open('/api/live/ws?x=1', sameOrigin(browser)));
  assert.equal(socket.hello.subject, 'user-alice');
  assert.equal(socket.hello.cookie, null);
  assert.equal(socket.hello.path, '/ws?x=1');
  socket.ws.send('hello there');
  const text = await nextMessage(socket);
  assert.equal(text.binary, false);
  assert.equal(text.data.toString(), 'hello there');
  const bytes = Buffer.from([0, 1, 2, 254, 255]);
  socket.ws.send(bytes);
  const binary = await nextMessage(socket);
  assert.equal(binary.binary, true);
  assert.deepEqual(Buffer.from(binary.data), bytes);
  socket.ws.close(4000, 'bye');
  assert.equal((await socket.closed).code, 4000);
});

test('an expired access token is refreshed before the upstream handshake', async () => {
  const browser = await signedIn();
  const refreshesBefore = stack.issued.filter((t) => t.grantType === 'refresh_token').length;
  await new Promise((resolve) => setTimeout(resolve, 3_500));
  const socket = opened(await open('/api/live/ws', sameOrigin(browser)));
  assert.ok(Number(socket.hello.expiresAt) * 1000 > Date.now(), 'the API got a token that is still valid');
  assert.ok(stack.issued.filter((t) => t.grantType === 'refresh_token').length > refreshesBefore, 'a refresh happened');
  socket.ws.close();
});

test('logout closes the socket (4401) and the SSE stream within a second; a reconnect is refused with 401', { timeout: 20_000 }, async () => {
  const browser = await signedIn();
  const cookie = browser.cookieHeader();
  const socket = opened(await open('/api/live/ws', sameOrigin(browser)));
  const events = await openEvents(browser);
  const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: stack.url }, redirect: 'manual' });
  assert.equal(logout.status, 303);
  const at = Date.now();
  const closed = await socket.closed;
  assert.equal(closed.code, 4401);
  assert.ok(closed.at - at < 1_500, `closed ${closed.at - at} ms after logout`);
  const ended = await events.ended;
  assert.ok(ended - at < 1_500, `the stream ended ${ended - at} ms after logout`);
  const again = refused(await open('/api/live/ws', { origin: stack.url, cookie }));
  assert.equal(again.status, 401);
});

/** Waits for a socket and an SSE stream of one session to be ended, each within a second of `at`. */
async function endedWithin(socket: Opened, events: { ended: Promise<number> }, at: number, what: string): Promise<void> {
  const closed = await socket.closed;
  assert.equal(closed.code, 4401, what);
  assert.ok(closed.at - at < 1_500, `${what}: the socket closed ${closed.at - at} ms later`);
  const ended = await events.ended;
  assert.ok(ended - at < 1_500, `${what}: the stream ended ${ended - at} ms later`);
}

test('"sign out my other sessions" (/auth/sessions/revoke) closes the other session\'s socket and SSE stream within a second; its own stay open', { timeout: 20_000 }, async () => {
  const elsewhere = await signedIn();
  const here = await signedIn();
  const socket = opened(await open('/api/live/ws', sameOrigin(elsewhere)));
  const events = await openEvents(elsewhere);
  const own = opened(await open('/api/live/ws', sameOrigin(here)));
  const revoke = await here.fetch('/auth/sessions/revoke', {
    method: 'POST',
    headers: { origin: stack.url, 'x-csrf': '1', 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
    body: JSON.stringify({ others: true }),
  });
  assert.equal(revoke.status, 200);
  assert.ok(((await revoke.json()) as { revoked: number }).revoked >= 1);
  await endedWithin(socket, events, Date.now(), 'sessions/revoke');
  own.ws.send('still here');
  assert.equal((await nextMessage(own)).data.toString(), 'still here', 'the session that asked keeps its socket');
  own.ws.terminate();
});

test('/ops/revoke by sub closes that user\'s socket and SSE stream within a second', { timeout: 20_000 }, async () => {
  const browser = await signedIn();
  const socket = opened(await open('/api/live/ws', sameOrigin(browser)));
  const events = await openEvents(browser);
  const revoke = await fetch(`${stack.url}/ops/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPS_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sub: 'user-alice' }),
  });
  assert.equal(revoke.status, 200);
  await endedWithin(socket, events, Date.now(), '/ops/revoke');
});

test('back-channel logout closes the socket (4401) and the SSE stream within a second', { timeout: 20_000 }, async () => {
  const browser = await signedIn();
  const socket = opened(await open('/api/live/ws', sameOrigin(browser)));
  const events = await openEvents(browser);
  const token = await signLogoutToken(signingKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sub: 'user-alice' });
  assert.equal(await postLogoutToken(stack.url, token), 200);
  const at = Date.now();
  const closed = await socket.closed;
  assert.equal(closed.code, 4401);
  assert.ok(closed.at - at < 1_500, `closed ${closed.at - at} ms after the logout token`);
  const ended = await events.ended;
  assert.ok(ended - at < 1_500, `the stream ended ${ended - at} ms after the logout token`);
});
