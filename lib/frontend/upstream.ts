/**
 * BFF_FRONTEND_UPSTREAM: the app's own server (or its dev server, e.g. Vite on :5173)
 * behind the broker's origin. Forwarded with the proxy's machinery (forward.ts: undici's
 * pool, streaming both ways, a deadline, no redirect followed) and its header hygiene
 * (headers.ts): the broker's session cookie, the browser's Authorization and
 * hop-by-hop headers never reach the app's server, its Set-Cookie never reaches the
 * browser. No token is ever attached: the app's server is not an API of the broker's.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/load.ts';
import { forward } from '../proxy/forward.ts';
import { headersForBrowser, headersForUpstream } from '../proxy/headers.ts';
import type { Route } from '../proxy/route-table.ts';
import { isReservedPath } from './paths.ts';

/** The app's server as a route of forward.ts: a dev server may take a while on a first, cold compile. */
function frontendRoute(upstream: URL): Route {
  return Object.freeze({
    path: '/',
    upstream,
    auth: 'none',
    methods: new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']),
    resource: undefined,
    scopes: [],
    timeoutMs: 60_000,
    forwardHeaders: new Set<string>(),
    streaming: false,
    maxConcurrent: 1024,
    maxConcurrentPerSession: 1024,
    websocket: true,
    exchange: undefined,
    dpop: false,
  });
}

const routes = new WeakMap<URL, Route>();

export async function forwardToFrontend(request: Request, pathAndQuery: string, config: Config): Promise<Response> {
  const upstream = config.frontend?.upstream as URL;
  let route = routes.get(upstream);
  if (!route) routes.set(upstream, (route = frontendRoute(upstream)));
  const headers = headersForUpstream(request.headers, {
    forwardedProto: config.forwarded.proto,
    forwardedHost: config.forwarded.host,
    forwardHeaders: route.forwardHeaders,
  });
  const answer = await forward(
    { url: new URL(pathAndQuery, upstream), origin: upstream.origin, path: pathAndQuery },
    request.method,
    headers,
    request.body,
    route,
    { signal: request.signal },
  );
  return new Response(answer.body, { status: answer.status, headers: headersForBrowser(answer.headers, { authenticated: false }) });
}

/** Request headers a WebSocket handshake needs (RFC 6455 §4.1), beside the proxy's allow-list. */
const HANDSHAKE_HEADERS = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions', 'origin', 'user-agent'];

function rawRefusal(socket: Duplex, status: string, body: string): void {
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/**
 * The app server's WebSockets (a dev server's hot reload: Vite's `vite-hmr`). Cross-site
 * WebSocket hijacking is refused first: a handshake is not subject to CORS, so a page
 * elsewhere could open it with the user's cookies; only the broker's own origin may.
 * The handshake reaches the app's server with the handshake headers only (no Cookie,
 * no Authorization); after the 101 the two sockets are piped as they are.
 */
export function upgradeToFrontend(req: IncomingMessage, socket: Duplex, head: Buffer, config: Config): void {
  const upstream = config.frontend?.upstream;
  const pathname = (req.url ?? '/').split('?', 1)[0] as string;
  if (!upstream || isReservedPath(pathname) || pathname.startsWith('/_next/')) {
    rawRefusal(socket, '404 Not Found', '{"error":"not_found"}');
    return;
  }
  if (req.headers.origin !== config.appOrigin) {
    rawRefusal(socket, '403 Forbidden', '{"error":"csrf"}');
    return;
  }
  const headers: Record<string, string> = { connection: 'Upgrade', upgrade: 'websocket' };
  for (const name of HANDSHAKE_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const outgoing = (upstream.protocol === 'https:' ? httpsRequest : httpRequest)({
    host: upstream.hostname.replace(/^\[|\]$/g, ''),
    port: upstream.port || (upstream.protocol === 'https:' ? 443 : 80),
    path: req.url ?? '/',
    method: 'GET',
    headers,
    timeout: 10_000,
  });
  const fail = () => {
    if (!socket.destroyed) rawRefusal(socket, '502 Bad Gateway', '{"error":"upstream_unavailable"}');
  };
  outgoing.once('timeout', () => outgoing.destroy());
  outgoing.once('error', fail);
  outgoing.once('response', (response) => {
    // The app refused the upgrade: none of its answer (headers, cookies) goes back, as for an API's refused handshake.
    response.resume();
    rawRefusal(socket, '502 Bad Gateway', '{"error":"upstream_unavailable"}');
  });
  outgoing.once('upgrade', (response, upstreamSocket, upstreamHead) => {
    const lines = ['HTTP/1.1 101 Switching Protocols', 'connection: Upgrade', 'upgrade: websocket'];
    for (const name of ['sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions']) {
      const value = response.headers[name];
      if (typeof value === 'string') lines.push(`${name}: ${value}`);
    }
    // The handshake timeout above is for the handshake only: a quiet socket (hot reload waits for
    // edits) must never be cut by it, whatever Node leaves set on the socket it hands over.
    upstreamSocket.setTimeout(0);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (head.length > 0) upstreamSocket.write(head);
    upstreamSocket.pipe(socket);
    socket.pipe(upstreamSocket);
    const close = () => {
      upstreamSocket.destroy();
      socket.destroy();
    };
    upstreamSocket.once('error', close);
    socket.once('error', close);
    upstreamSocket.once('close', close);
    socket.once('close', close);
  });
  socket.once('error', () => outgoing.destroy());
  outgoing.end();
}
