/**
 * The broker's own HTTP server (`npm start`): the broker's endpoints are answered
 * straight from the node request through the lib/ handlers of lib/http/endpoints.ts —
 * the same table the app/ route files read — and every other path (pages, `/_next/*`
 * assets) is handed to Next.js's custom-server handler. Next's route runtime is never on
 * an API call: it would cost nine tenths of each call (bench/README.md) and rebuild the
 * URL (reordered, re-encoded query; README "Front door").
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { endpointPathOf, findEndpoint, ROUTE_METHODS, type Endpoint, type RouteMethod } from '../lib/http/endpoints.ts';
import { runInRequestContext } from '../lib/http/request-context.ts';
import { REQUEST_ID_HEADER, requestIdFrom } from '../lib/http/request-id.ts';
import { inRequestScope } from '../lib/http/request-scope.ts';
import { log } from '../lib/log.ts';
import { traceUpgrade } from '../lib/ops/tracing.ts';
import { handleUpgrade } from '../lib/proxy/websocket.ts';
import { sendResponse, toRequest } from './adapter.ts';

export interface NextHandlers {
  /** `app.getRequestHandler()`. */
  request(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** `app.getUpgradeHandler()`. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
}

export interface FrontDoorOptions {
  /** APP_BASE_URL's origin: the origin of every Request built here (never the Host header's). */
  origin: string;
  next: NextHandlers;
  /**
   * Whether Next.js serves upgrades of its own on `/_next/*` (the dev server's hot reload).
   * A production build has none, and its upgrade handler leaves such a socket hanging
   * (seen here), so `npm start` passes false and those get the 404 too.
   */
  nextUpgrades: boolean;
  /**
   * BFF_FRONTEND_*: the web app takes the paths no broker endpoint takes, Next.js's `/`
   * demo page included (lib/frontend/handler.ts `frontendEndpoint`), and, with an
   * upstream, the upgrades outside `/api/` and `/_next/` (its dev server's hot reload; it refuses the reserved paths itself).
   */
  frontend?: {
    endpoint(pathname: string): Endpoint | undefined;
    upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  };
}

/** The header that tells an answer came through the front door, not Next's route runtime (tests, operators). */
export const FRONT_DOOR_HEADER = 'x-cloakroom-host';

/**
 * Methods that must never be forwarded (CONTRACT.md): TRACE and TRACK echo the request,
 * cookies included, back to a script (cross-site tracing); CONNECT would make the broker
 * a tunnel. The Fetch API refuses to build a Request with them, so they are answered here.
 */
const NEVER_FORWARDED = new Set(['TRACE', 'TRACK', 'CONNECT']);

const NOT_ALLOWED_BODY = '{"error":"method_not_allowed"}';
const NOT_FOUND_BODY = '{"error":"not_found"}';
const INVALID_BODY = '{"error":"invalid_request"}';

/** A complete HTTP/1.1 answer written on a raw socket (CONNECT, upgrades, parse errors), then the socket ends. */
function rawAnswer(socket: Duplex, status: string, body: string, extra = ''): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** A small JSON answer of the front door's own, framed with its length (no chunking for 30 bytes). */
function answerJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(body)), ...headers })
    .end(body);
}

function isRouteMethod(method: string): method is RouteMethod {
  return (ROUTE_METHODS as readonly string[]).includes(method);
}

export function createFrontDoor({ origin, next, nextUpgrades, frontend }: FrontDoorOptions) {
  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '/';
    const mark = target.indexOf('?');
    const pathname = mark === -1 ? target : target.slice(0, mark);
    const method = req.method ?? 'GET';
    const found = pathname.startsWith('/') ? (findEndpoint(pathname) ?? frontend?.endpoint(pathname)) : undefined;
    if (!found) {
      if (NEVER_FORWARDED.has(method)) {
        // Next.js answers TRACE with a bare 500 before any code runs.
        answerJson(res, 405, NOT_ALLOWED_BODY, { allow: ROUTE_METHODS.join(', ') });
        return;
      }
      void next.request(req, res);
      return;
    }
    res.setHeader(FRONT_DOOR_HEADER, 'front-door');
    // Decided here, not in the scope: the answers below that the front door writes itself carry it too.
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    if (NEVER_FORWARDED.has(method)) {
      answerJson(res, 405, NOT_ALLOWED_BODY, { allow: found.allow.join(', ') });
      return;
    }
    const route = isRouteMethod(method) ? found.handlers[method] : found.other;
    const controller = new AbortController();
    // The browser going away aborts request.signal: the proxy cancels the upstream call.
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    let request: Request;
    try {
      request = toRequest(req, origin, controller.signal);
    } catch {
      // A target the URL parser refuses: nothing to route.
      answerJson(res, 400, INVALID_BODY);
      return;
    }
    // The span's route: the endpoint's key, or `frontend` for the web app's paths (never the raw path).
    inRequestScope(endpointPathOf(pathname) ?? 'frontend', route, request, requestId)
      .then((response) => sendResponse(response, req, res))
      .catch((error: unknown) => {
        // endpoint() turns every throw into the contract's answer; reaching here is a bug.
        log.error('front_door_failed', { errorName: error instanceof Error ? error.name : typeof error });
        if (!res.headersSent) answerJson(res, 500, '{"error":"server_error"}');
        else res.destroy();
      });
  }

  /** Node emits CONNECT as its own event, with the raw socket: answered 405, never left hanging. */
  function onConnect(_req: IncomingMessage, socket: Duplex): void {
    rawAnswer(socket, '405 Method Not Allowed', NOT_ALLOWED_BODY, `allow: ${ROUTE_METHODS.join(', ')}\r\n`);
  }

  /**
   * Every upgrade request, in one place. `/_next/*` is Next's own (the dev server's
   * `/_next/hmr`, when `nextUpgrades`); anything else gets a real HTTP answer, never a
   * hanging socket.
   * `/api/*` is the WebSocket proxy (lib/proxy/websocket.ts: routes with `"websocket": true`).
   */
  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const pathname = (req.url ?? '/').split('?', 1)[0] as string;
    if (pathname === '/api' || pathname.startsWith('/api/')) {
      // The handshake's log lines and the API's handshake carry the request id too.
      void runInRequestContext(requestIdFrom(req.headers[REQUEST_ID_HEADER]), () => traceUpgrade(() => handleUpgrade(req, socket, head))).catch(() => socket.destroy());
      return;
    }
    if (nextUpgrades && pathname.startsWith('/_next/')) {
      void next.upgrade(req, socket, head).catch(() => socket.destroy());
      return;
    }
    if (frontend?.upgrade) {
      frontend.upgrade(req, socket, head);
      return;
    }
    rawAnswer(socket, '404 Not Found', NOT_FOUND_BODY);
  }

  /**
   * A request Node could not parse. A listener here replaces Node's own answer, so its
   * statuses are kept (408 slow headers, 431 headers too large, 400 otherwise, e.g. raw
   * non-ASCII bytes in the request-target); a 400 carries the contract's body, and a
   * method unknown to Node's parser (TRACK) gets the contract's 405 instead of a 400.
   */
  function onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    // As Node's own handler does: no answer on a dead socket, nor over an answer already
    // under way on it (a pipelined request failing to parse while the previous one streams).
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    if (error.code === 'HPE_INVALID_METHOD') {
      rawAnswer(socket, '405 Method Not Allowed', NOT_ALLOWED_BODY, `allow: ${ROUTE_METHODS.join(', ')}\r\n`);
      return;
    }
    if (error.code === 'HPE_HEADER_OVERFLOW' || error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '408 Request Timeout';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    rawAnswer(socket, '400 Bad Request', INVALID_BODY);
  }

  return { onRequest, onConnect, onUpgrade, onClientError };
}

/** Puts the front door on a node:http server. */
export function attachFrontDoor(server: Server, options: FrontDoorOptions): void {
  const door = createFrontDoor(options);
  server.on('request', door.onRequest);
  server.on('connect', door.onConnect);
  server.on('upgrade', door.onUpgrade);
  server.on('clientError', door.onClientError);
}
