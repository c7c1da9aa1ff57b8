/**
 * The demo API: a plain node:http resource server that accepts only JWT access tokens
 * issued for it (its own audience) by the configured issuer. It answers who called it
 * with which token claims — never the token itself — so the demo and the tests can see
 * that the broker attached the right per-API token.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { WebSocketServer } from 'ws';
import { listen } from './listen.ts';

export interface DemoApiOptions {
  port: number;
  /** Default '127.0.0.1'. */
  host?: string;
  issuer: string;
  /** The `aud` its tokens must carry: the resource indicator it is registered under. */
  audience: string;
  /** Reported as `api` in answers. Default 'demo-api'. */
  name?: string;
  /** Default: the issuer's discovered `jwks_uri`. */
  jwksUri?: string;
}

export interface DemoApi {
  url: string;
  port: number;
  close(): Promise<void>;
  stats: { requests: number };
}

const ALGORITHMS = ['RS256', 'ES256', 'PS256'];
/** jose refetches the key set for an unknown `kid` at most this often. */
const JWKS_COOLDOWN_MS = 2_000;

type KeySet = ReturnType<typeof createRemoteJWKSet>;

/**
 * RFC 9068 access-token checks. When the provider has just rotated its keys, a token may
 * carry a `kid` published after jose's last fetch, while jose is still in its cooldown
 * (it refuses then rather than fetch again): wait out the cooldown once and verify again,
 * so a rotation is not a burst of 401s. Forged `kid`s cost at most one fetch per cooldown.
 */
async function verifyAccessToken(token: string, keys: KeySet, issuer: string, audience: string) {
  // RFC 9068: only access tokens, so an ID token (or any other JWT) is never accepted.
  const options = { issuer, audience, algorithms: ALGORITHMS, typ: 'at+jwt' };
  try {
    return await jwtVerify(token, keys, options);
  } catch (error) {
    if (!(error instanceof errors.JWKSNoMatchingKey) || !keys.coolingDown) throw error;
    await new Promise((resolve) => setTimeout(resolve, JWKS_COOLDOWN_MS));
    return jwtVerify(token, keys, options);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(payload);
}

function correlationOf(req: IncomingMessage): { requestId: string | null; traceparent: string | null; tracestate: string | null } {
  const one = (value: string | string[] | undefined) => (typeof value === 'string' ? value : null);
  return { requestId: one(req.headers['x-request-id']), traceparent: one(req.headers.traceparent), tracestate: one(req.headers.tracestate) };
}

function unauthorized(res: ServerResponse): void {
  sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
}

async function discoverJwksUri(issuer: string): Promise<string> {
  const response = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(5_000),
  });
  if (!response.ok) throw new Error(`discovery at ${issuer} answered ${response.status}`);
  const metadata = (await response.json()) as { jwks_uri?: unknown };
  if (typeof metadata.jwks_uri !== 'string') throw new Error(`discovery at ${issuer} has no jwks_uri`);
  return metadata.jwks_uri;
}

/** Streams three events 300 ms apart (or, with `?forever`, one every 200 ms until the caller goes), to show that the broker passes streams through. */
function streamEvents(req: IncomingMessage, res: ServerResponse, forever = false): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  let n = 0;
  const send = () => {
    n += 1;
    res.write(`data: ${JSON.stringify({ n, at: Date.now() })}\n\n`);
    if (n === 3 && !forever) {
      clearInterval(timer);
      res.end();
    }
  };
  const timer = setInterval(send, forever ? 200 : 300);
  send();
  req.on('close', () => clearInterval(timer));
}

export async function startDemoApi(options: DemoApiOptions): Promise<DemoApi> {
  const host = options.host ?? '127.0.0.1';
  const name = options.name ?? 'demo-api';
  const stats = { requests: 0 };

  // Discovered lazily and once: the API may start before the provider does (npm run demo),
  // and a failed discovery is retried on the next request rather than remembered.
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  let pending: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const keySet = () => {
    if (jwks) return Promise.resolve(jwks);
    pending ??= (options.jwksUri ? Promise.resolve(options.jwksUri) : discoverJwksUri(options.issuer)).then(
      (uri) => (jwks = createRemoteJWKSet(new URL(uri), { cooldownDuration: JWKS_COOLDOWN_MS })),
      (error: unknown) => {
        pending = undefined;
        throw error;
      },
    );
    return pending;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    stats.requests += 1;
    const url = new URL(req.url ?? '/', 'http://api.invalid');

    const authorization = req.headers.authorization ?? '';
    const match = /^Bearer ([A-Za-z0-9_.~+/-]+=*)$/.exec(authorization);
    if (!match) {
      unauthorized(res);
      return;
    }
    let keys;
    try {
      keys = await keySet();
    } catch (error) {
      // A provider that cannot be reached is not the caller's fault: 503, not 401.
      console.error('[demo-api] issuer discovery failed:', error instanceof Error ? error.message : error);
      sendJson(res, 503, { error: 'issuer_unavailable' });
      return;
    }
    let payload;
    try {
      ({ payload } = await verifyAccessToken(match[1], keys, options.issuer, options.audience));
    } catch (error) {
      // jose's own errors are a bad token; anything else (the key set fetch failing, a
      // timeout) is the provider being unreachable.
      if (error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout)) {
        unauthorized(res);
        return;
      }
      sendJson(res, 503, { error: 'issuer_unavailable' });
      return;
    }

    if (req.method === 'GET' && url.pathname.endsWith('/events')) {
      streamEvents(req, res, url.searchParams.has('forever'));
      return;
    }

    // Drain any request body: the answer does not depend on it.
    req.resume();
    sendJson(res, 200, {
      api: name,
      path: url.pathname,
      method: req.method,
      subject: payload.sub,
      audience: payload.aud,
      scope: payload.scope,
      clientId: payload.client_id,
      // `token-exchange` for a token the broker exchanged for this API (RFC 8693); else none.
      grantType: typeof payload.gty === 'string' ? payload.gty : undefined,
      issuedAt: payload.iat,
      expiresAt: payload.exp,
      // What lets the API's own logs and spans join the broker's: the request id and the
      // W3C trace context the broker sent (README "Logs", "Traces").
      correlation: correlationOf(req),
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      console.error('[demo-api] request failed:', error);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });
  // A WebSocket echo (any path), for the demo and the tests: the first message says who
  // called with which token claims and whether a cookie reached it; then every message
  // comes back as it was sent (text or binary), pings are answered, close codes echoed.
  const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const refuse = (socket: Duplex, status: number) => socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    stats.requests += 1;
    const match = /^Bearer ([A-Za-z0-9_.~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!match) return void refuse(socket, 401);
    keySet()
      .then((keys) => verifyAccessToken(match[1], keys, options.issuer, options.audience))
      .then(
        ({ payload }) => {
          echo.handleUpgrade(req, socket, head, (ws) => {
            ws.send(JSON.stringify({ hello: { api: name, path: req.url, subject: payload.sub, expiresAt: payload.exp, cookie: req.headers.cookie ?? null, protocol: ws.protocol, correlation: correlationOf(req) } }));
            ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
          });
        },
        (error: unknown) => refuse(socket, error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout) ? 401 : 503),
      );
  });
  const port = await listen(server, options.port, host);

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    stats,
    close() {
      return new Promise<void>((resolve, reject) => {
        for (const client of echo.clients) client.terminate();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
