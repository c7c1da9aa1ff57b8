/**
 * The broker's real route code (lib/, exactly what app/ wires up) served over plain
 * node:http, so integration tests speak HTTP to it — and the provider can reach its
 * back-channel endpoint — without a Next.js build. Routing is lib/http/endpoints.ts, the
 * table both real hosts read; the Request is built from the parsed URL, as Next.js's
 * route runtime builds it (the front door's raw-target forwarding is tested end to end).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { findEndpoint, ROUTE_METHODS, type Route, type RouteMethod } from '../../lib/http/endpoints.ts';
import { jsonResponse } from '../../lib/http/responses.ts';
import { forwardedForWithPeer } from '../../lib/ops/client-address.ts';

/** The one endpoint table both hosts read (lib/http/endpoints.ts): never a copy of it here. */
function route(method: string, pathname: string): Route | undefined {
  const found = findEndpoint(pathname);
  if (!found) return undefined;
  return (ROUTE_METHODS as readonly string[]).includes(method) ? found.handlers[method as RouteMethod] : found.other;
}

function toRequest(req: IncomingMessage, origin: string, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  // As under `next start` with the peer hook (instrumentation.ts): the socket's peer is
  // the last X-Forwarded-For entry the route code sees.
  headers.set('x-forwarded-for', forwardedForWithPeer(req));
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(new URL(req.url ?? '/', origin), {
    method: req.method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream) : null,
    signal,
    // @ts-expect-error Node's fetch needs duplex for a streamed request body.
    duplex: 'half',
  });
}

async function send(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

export interface BrokerServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Listens first (port 0) so the test can put the real origin into APP_BASE_URL. */
export async function listenBroker(): Promise<BrokerServer> {
  let origin = '';
  const server = createServer((req, res) => {
    const controller = new AbortController();
    // The browser going away must cancel the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const pathname = (req.url ?? '/').split('?')[0];
    const handler = route(req.method ?? 'GET', pathname);
    let request: Request | undefined;
    try {
      request = handler ? toRequest(req, origin, controller.signal) : undefined;
    } catch {
      // A method the Fetch API refuses (TRACE, CONNECT): Next.js never routes it either.
      res.writeHead(405, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"error":"method_not_allowed"}');
      return;
    }
    const answer = handler && request ? handler(request) : Promise.resolve(jsonResponse({ error: 'not_found' }, 404));
    answer
      .then((response) => send(response, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  origin = `http://localhost:${port}`;
  return {
    url: origin,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
