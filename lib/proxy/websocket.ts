import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ConfigError, getConfig, type Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { errorResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { nameRequestRoute, startUpstreamSpan } from '../ops/tracing.ts';
import { currentRequestId } from '../http/request-context.ts';
import { correlateUpstream } from './correlation.ts';
import { checkHost } from '../security/host.ts';
import { watchSession } from '../session/lifetime-watch.ts';
import { getStore, type KeyValueStore } from '../stores/index.ts';
import { admitExchange } from './concurrency.ts';
import { authorize, cookiesOrNone } from './handler.ts';
import { buildUpstreamUrl } from './path.ts';
import { matchRoute, shadowsLongerRoute, type Route } from './route-table.ts';

/**
 * WebSockets through the broker (routes with `"websocket": true`). The browser's side is
 * checked as every API call is, except for the custom header a browser WebSocket cannot
 * send: so the `Origin` is required and must be APP_BASE_URL's (cross-site WebSocket
 * hijacking: a browser sends the cookie on a cross-site upgrade, and only Origin tells).
 * The upstream handshake carries the session's access token (refreshed first when due),
 * never the browser's cookies or Authorization; the upstream's handshake headers
 * (Set-Cookie included) never reach the browser. The open socket ends with its session
 * (lib/session/lifetime-watch.ts): close code 4401.
 *
 * `ws` does the framing on both sides; the broker only relays messages.
 */

/** Close code for "the session ended" (4000–4999: private use, RFC 6455 §7.4.2), 401-like. */
export const SESSION_ENDED_CLOSE_CODE = 4401;
/** The largest message relayed (either way): a bound on what one socket can make the broker buffer. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Above this many bytes queued towards one side, the other side is paused (backpressure). */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * The subprotocol the upstream chose, per browser request: the browser is told exactly
 * that one (RFC 6455 §4.2.2), or none when the upstream chose none — never simply the
 * first it offered, which would make the two ends speak different protocols.
 */
const chosenProtocol = new WeakMap<IncomingMessage, string>();

// No permessage-deflate: compression of secrets next to attacker-chosen text leaks them (CRIME/BREACH).
const browserSide = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: MAX_MESSAGE_BYTES,
  autoPong: false,
  clientTracking: false,
  handleProtocols: (_offered, request) => chosenProtocol.get(request) || false,
});

/**
 * The browser's handshake is checked before anything is opened upstream (RFC 6455
 * §4.2.1): `ws` would refuse a bad key or version itself, with its own answer and after
 * the upstream socket and a concurrency slot were already taken.
 */
function checkHandshake(request: IncomingMessage): void {
  const key = request.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key)) {
    throw new BrokerError('invalid_request', { publicMessage: 'a valid Sec-WebSocket-Key is required' });
  }
  if (request.headers['sec-websocket-version'] !== '13') {
    throw new BrokerError('invalid_request', { publicMessage: 'only WebSocket version 13 is supported', headers: [['sec-websocket-version', '13']] });
  }
}

/**
 * A real HTTP answer to a refused upgrade, never a silent or hanging socket: the
 * contract's status and JSON body, `Cache-Control: no-store`, `Connection: close`.
 */
export async function refuseUpgrade(socket: Duplex, error: unknown, extraHeaders: Array<[string, string]> = []): Promise<void> {
  const response = errorResponse(error, extraHeaders);
  const body = await response.text();
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`];
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') lines.push(`${name}: ${value}`);
  });
  for (const cookie of response.headers.getSetCookie()) lines.push(`set-cookie: ${cookie}`);
  // Well-formed by construction (lib/http/request-id.ts): no CR/LF can reach this line.
  const requestId = currentRequestId();
  if (requestId !== undefined) lines.push(`x-request-id: ${requestId}`);
  lines.push('connection: close', `content-length: ${Buffer.byteLength(body)}`);
  if (!socket.writable) return void socket.destroy();
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // A peer that never reads its answer does not keep the socket.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** The request as a web `Request`, for the checks shared with the HTTP endpoints. */
function asRequest(request: IncomingMessage, config: Config): Request {
  const headers = new Headers();
  for (let i = 0; i < request.rawHeaders.length; i += 2) headers.append(request.rawHeaders[i] as string, request.rawHeaders[i + 1] as string);
  return new Request(new URL(config.appOrigin), { method: 'GET', headers });
}

/** Same-origin evidence is required: there is no custom header to rely on (RFC 6455 §10.2). */
function checkUpgradeOrigin(request: IncomingMessage, config: Config): void {
  const origin = request.headers.origin;
  if (origin !== config.appOrigin) {
    throw new BrokerError('csrf', { publicMessage: origin === undefined ? 'an Origin header is required' : 'cross-origin WebSocket refused' });
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new BrokerError('csrf', { publicMessage: 'cross-site WebSocket refused' });
}

interface Admitted {
  route: Route;
  upstreamUrl: URL;
  accessToken: string | undefined;
  session: import('../session/session.ts').Session | undefined;
  setCookies: string[];
  release: () => void;
}

/** The checks of every API call, in the proxy's order; throws the contract's error. */
async function admit(request: IncomingMessage, config: Config, store: KeyValueStore, setCookies: string[]): Promise<Admitted> {
  const web = asRequest(request, config);
  checkHost(web, config);
  checkUpgradeOrigin(request, config);
  if (request.method !== 'GET' || (request.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw new BrokerError('invalid_request', { publicMessage: 'only WebSocket upgrades are accepted' });
  }
  checkHandshake(request);
  // The raw target, byte for byte: the path checks read the still-encoded path.
  const raw = request.url ?? '/';
  const queryAt = raw.indexOf('?');
  const pathname = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const search = queryAt === -1 ? '' : raw.slice(queryAt);
  const matched = matchRoute(config.routes, pathname);
  if (!matched || !matched.route.websocket) throw new BrokerError('not_found', { publicMessage: matched ? 'this route does not accept WebSockets' : undefined });
  const { route, remainder } = matched;
  nameRequestRoute('GET', route.path);
  if (shadowsLongerRoute(config.routes, pathname, route)) throw new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' });
  if (!route.methods.has('GET')) throw new BrokerError('method_not_allowed', { headers: [['allow', [...route.methods].join(', ')]] });
  const target = buildUpstreamUrl(route, remainder, search);
  if (!target.ok) {
    log.warn('proxy_path_refused', { route: route.path, reason: target.reason, pathLength: remainder.length, queryLength: search.length });
    throw new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' });
  }

  const { accessToken, session, pending } = await authorize(web, route, config, store, setCookies, request.socket.remoteAddress);
  // A refresh rotated the refresh token, or idle activity is due: the 101 answer carries
  // the cookie (RFC 6455 §4.1: the handshake answer may set cookies), computed as the
  // proxy does from the newest state, so that a request that loses a race never writes
  // back a spent refresh token.
  if (pending) setCookies.push(...(await cookiesOrNone(pending, config, store)));
  const release = admitExchange(route, session?.id);
  const upstreamUrl = new URL(target.url);
  upstreamUrl.protocol = upstreamUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  return { route, upstreamUrl, accessToken, session, setCookies, release };
}

/** Opens the upstream socket with the bearer token; resolves once it is open. */
function connectUpstream(admitted: Admitted, protocols: string[], abandon: AbortSignal): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (admitted.accessToken) headers.authorization = `Bearer ${admitted.accessToken}`;
    correlateUpstream(headers);
    // The handshake's span: from the upgrade request to the API's 101 (or its refusal).
    const span = startUpstreamSpan('GET', admitted.route.path, admitted.upstreamUrl.origin);
    span.inject(headers);
    let spanEnded = false;
    const endSpan = (failure?: string) => {
      if (spanEnded) return;
      spanEnded = true;
      if (!failure) span.answered(101);
      span.end(failure);
    };
    const upstream = new WebSocket(admitted.upstreamUrl, protocols, {
      headers,
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload: MAX_MESSAGE_BYTES,
      autoPong: false,
    });
    const timer = setTimeout(() => {
      upstream.terminate();
      endSpan('upstream_timeout');
      reject(new BrokerError('upstream_timeout'));
    }, admitted.route.timeoutMs);
    const fail = (error: BrokerError) => {
      clearTimeout(timer);
      endSpan(error.code);
      reject(error);
    };
    abandon.addEventListener('abort', () => {
      upstream.terminate();
      fail(new BrokerError('upstream_unavailable', { publicMessage: 'the browser went away' }));
    }, { once: true });
    // Refused handshake (a status instead of 101): the API's answer is not passed on.
    upstream.once('unexpected-response', (_request, response) => {
      response.resume();
      upstream.terminate();
      fail(new BrokerError('upstream_unavailable', { publicMessage: 'the API refused the WebSocket' }));
    });
    // `on`, not `once`: a second error before the relay takes over must not go uncaught.
    upstream.on('error', (error) => fail(new BrokerError('upstream_unavailable', { cause: error })));
    upstream.once('open', () => {
      clearTimeout(timer);
      endSpan();
      // Paused until the relay listens: an API that speaks first (a greeting in the same
      // packet as its 101) would otherwise have that message emitted to no listener and lost.
      upstream.pause();
      resolve(upstream);
    });
  });
}

/** Close codes a peer may send (RFC 6455 §7.4.1): 1005, 1006 and 1015 are only ever reported. */
function sendableCode(code: number): number | undefined {
  if (code === 1005 || code === 1006 || code === 1015) return undefined;
  return code >= 1000 && code <= 4999 ? code : undefined;
}

/** Messages, pings and pongs both ways, with backpressure; either side closing closes the other. */
function relay(browser: WebSocket, upstream: WebSocket, onClosed: () => void): void {
  const pipe = (from: WebSocket, to: WebSocket) => {
    from.on('message', (data: RawData, isBinary: boolean) => {
      if (to.readyState !== WebSocket.OPEN) return;
      to.send(data, { binary: isBinary }, () => {
        if (to.bufferedAmount < HIGH_WATER_BYTES && from.isPaused) from.resume();
      });
      if (to.bufferedAmount >= HIGH_WATER_BYTES) from.pause();
    });
    from.on('ping', (data) => to.readyState === WebSocket.OPEN && to.ping(data));
    from.on('pong', (data) => to.readyState === WebSocket.OPEN && to.pong(data));
    from.on('close', (code, reason) => {
      if (to.readyState === WebSocket.OPEN) to.close(sendableCode(code), sendableCode(code) ? reason : undefined);
      else if (to.readyState === WebSocket.CONNECTING) to.terminate();
      // A peer that never answers the close does not hold the socket.
      setTimeout(() => to.terminate(), 5_000).unref();
    });
    from.on('error', () => from.terminate());
  };
  pipe(browser, upstream);
  pipe(upstream, browser);
  upstream.resume();
  let closed = 0;
  const count = () => {
    if (++closed === 2) onClosed();
  };
  browser.once('close', count);
  upstream.once('close', count);
}

/**
 * `server.on('upgrade')` for `/api/...`: a WebSocket relayed to the route's upstream, or
 * a real HTTP refusal. Never throws, never leaves the socket hanging.
 */
export async function handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => socket.destroy());
  let config: Config;
  try {
    config = getConfig();
  } catch (error) {
    if (error instanceof ConfigError) return refuseUpgrade(socket, new Error('server misconfigured'));
    throw error;
  }
  const store = getStore();
  const setCookies: string[] = [];
  let admitted: Admitted | undefined;
  const gone = new AbortController();
  const onGone = () => gone.abort();
  socket.once('close', onGone);
  try {
    admitted = await admit(request, config, store, setCookies);
    const protocols = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    const upstream = await connectUpstream(admitted, protocols, gone.signal);
    socket.off('close', onGone);
    const { session, release } = admitted;
    const cookies = setCookies;
    const onHeaders = (headers: string[]) => {
      for (const cookie of cookies) headers.push(`Set-Cookie: ${cookie}`);
      headers.push('Cache-Control: no-store');
    };
    if (upstream.protocol) chosenProtocol.set(request, upstream.protocol);
    let upgraded = false;
    browserSide.once('headers', onHeaders);
    browserSide.handleUpgrade(request, socket, head, (browser) => {
      upgraded = true;
      let stopWatching = () => {};
      relay(browser, upstream, () => {
        stopWatching();
        release();
      });
      if (session) {
        stopWatching = watchSession(session, config, store, (reason) => {
          log.info('websocket_closed', { reason: `session ${reason}`, route: admitted?.route.path });
          browser.close(SESSION_ENDED_CLOSE_CODE, 'session ended');
          if (upstream.readyState === WebSocket.OPEN) upstream.close(1001, 'session ended');
          setTimeout(() => {
            browser.terminate();
            upstream.terminate();
          }, 1_000).unref();
        });
      }
    });
    browserSide.off('headers', onHeaders);
    if (!upgraded) {
      // `ws` completes an upgrade synchronously, or refuses it (the browser's socket went
      // away meanwhile): then nothing may stay open upstream, nor hold a slot.
      upstream.terminate();
      release();
    }
  } catch (error) {
    socket.off('close', onGone);
    admitted?.release();
    if (!(error instanceof BrokerError)) log.warn('websocket_refused', { errorName: error instanceof Error ? error.name : typeof error });
    await refuseUpgrade(socket, error, setCookies.map((cookie) => ['set-cookie', cookie] as [string, string]));
  }
}
