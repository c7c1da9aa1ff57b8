/**
 * The broker's real route code (lib/, exactly what app/ wires up) served over plain
 * node:http, so integration tests speak HTTP to it — and the provider can reach its
 * back-channel endpoint — without a Next.js build. The routing table mirrors app/.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { endpoint } from '../../lib/http/handler.ts';
import { jsonResponse, methodNotAllowed } from '../../lib/http/responses.ts';
import { handleBackchannelLogout } from '../../lib/oidc/backchannel.ts';
import { handleCallback } from '../../lib/oidc/callback.ts';
import { handleLogin } from '../../lib/oidc/login.ts';
import { handleLogout } from '../../lib/oidc/logout.ts';
import { handleProxy } from '../../lib/proxy/handler.ts';
import { handleSession } from '../../lib/session/endpoint.ts';
import { forwardedForWithPeer } from '../../lib/ops/client-address.ts';
import { opsMethodNotAllowed } from '../../lib/ops/ops-auth.ts';
import { handleOpsRevoke, handleOpsSessions } from '../../lib/ops/ops-sessions.ts';
import { handleListSessions, handleRevokeSessions } from '../../lib/session/sessions-endpoint.ts';

type Route = (request: Request) => Promise<Response>;
const ROUTES: Record<string, Partial<Record<string, Route>>> = {
  '/auth/login': { GET: endpoint(handleLogin) },
  '/auth/callback': { GET: endpoint(handleCallback) },
  '/auth/session': { GET: endpoint(handleSession) },
  '/auth/logout': { POST: endpoint(handleLogout), GET: async () => methodNotAllowed(['POST']) },
  '/auth/backchannel-logout': { POST: endpoint(handleBackchannelLogout), GET: async () => methodNotAllowed(['POST']) },
  '/auth/sessions': { GET: endpoint(handleListSessions), POST: async () => methodNotAllowed(['GET', 'HEAD']) },
  '/auth/sessions/revoke': { POST: endpoint(handleRevokeSessions), GET: async () => methodNotAllowed(['POST']) },
  '/ops/revoke': { POST: endpoint(handleOpsRevoke, { checkHost: false }), GET: endpoint(opsMethodNotAllowed(['POST']), { checkHost: false }) },
  '/ops/sessions': { GET: endpoint(handleOpsSessions, { checkHost: false }), POST: endpoint(opsMethodNotAllowed(['GET', 'HEAD']), { checkHost: false }) },
  '/healthz': { GET: async () => jsonResponse({ status: 'ok' }) },
};
const proxy = endpoint(handleProxy);

function route(method: string, pathname: string): Route | undefined {
  if (pathname.startsWith('/api/')) return proxy;
  return ROUTES[pathname]?.[method];
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
    const answer = handler && request
      ? handler(request)
      : Promise.resolve(pathname.startsWith('/auth/') && ROUTES[pathname] ? methodNotAllowed(Object.keys(ROUTES[pathname] ?? {})) : jsonResponse({ error: 'not_found' }, 404));
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
