/**
 * A real node:http upstream for proxy tests: it records every request it receives
 * (method, raw request-target, headers, body size and SHA-256, streamed, never buffered)
 * and answers from a small set of endpoints, recognised by a path segment anywhere in
 * the path (so that a route's base path, `/v1/echo`, does not matter):
 *
 *   echo (also any unknown path)  JSON of what it saw; the Authorization value is never echoed
 *   set-cookie                    Set-Cookie, hop-by-hop and Connection-named headers
 *   respond?headers=<b64url JSON> exactly the given [name, value] pairs (`&body=` text)
 *   redirect                      302 to http://elsewhere.invalid/
 *   sse?count=3&interval=300      server-sent events, each flushed as it is written
 *   slow?ms=1000                  answers after that long
 *   stream?kb=1024                that many KiB of octets, written as fast as the reader takes them
 *   hang                          never answers; the record notes when the caller went away
 *   upload                        consumes the body as a stream; answers its size and SHA-256
 *   cache                         answers with its own Cache-Control: max-age=60
 *   status/<code>                 answers that status
 *
 * Tokens are never kept in the clear: a record holds a hash of the Authorization value,
 * so tests compare tokens without ever printing one.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

export interface UpstreamRecord {
  method: string;
  /** The request-target exactly as it arrived, e.g. `/v1/a/b?x=1`. */
  url: string;
  /** Lower-case names as Node parsed them; `authorization` replaced by `<redacted>`. */
  headers: IncomingHttpHeaders;
  /** Names and values as sent, `[name, value, name, value...]`; the Authorization value redacted. */
  rawHeaders: string[];
  /** SHA-256 (hex) of the whole Authorization value, when there was one. */
  authorizationSha256: string | undefined;
  /** The Authorization value has the form `Bearer <token>`. */
  bearer: boolean;
  /** Body bytes received so far (final once `complete`). */
  bodySize: number;
  /** SHA-256 (hex) of the body, set when the body has ended. */
  bodySha256: string | undefined;
  complete: boolean;
  receivedAt: number;
  /** When the exchange ended, answered or not. */
  closedAt: number | undefined;
  /** The connection closed before the answer was complete: the caller went away. */
  aborted: boolean;
}

export interface TestUpstream {
  /** `http://127.0.0.1:<port>` */
  url: string;
  host: string;
  port: number;
  /** Every request received, in order. */
  readonly records: UpstreamRecord[];
  /** Forgets the records. */
  reset(): void;
  /** Resolves with the first record matching `predicate`, or rejects after `timeoutMs`. */
  waitFor(predicate: (record: UpstreamRecord) => boolean, timeoutMs?: number): Promise<UpstreamRecord>;
  close(): Promise<void>;
}

const sha256 = (value: string | Buffer) => createHash('sha256').update(value).digest('hex');

const ENDPOINTS = new Set(['echo', 'set-cookie', 'respond', 'redirect', 'sse', 'slow', 'stream', 'hang', 'upload', 'cache', 'status']);

function endpointOf(pathname: string): { name: string; argument: string | undefined } {
  const segments = pathname.split('/');
  const index = segments.findIndex((s) => ENDPOINTS.has(s));
  if (index === -1) return { name: 'echo', argument: undefined };
  return { name: segments[index] as string, argument: segments[index + 1] };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

/** The headers as the API would echo them: the Authorization value is never repeated. */
function shownHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const shown = { ...headers };
  if (shown.authorization !== undefined) {
    shown.authorization = shown.authorization.startsWith('Bearer ') ? 'Bearer <present>' : '<present>';
  }
  return shown;
}

function record(req: IncomingMessage): UpstreamRecord {
  const authorization = req.headers.authorization;
  const rawHeaders = [...req.rawHeaders];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'authorization') rawHeaders[i + 1] = '<redacted>';
  }
  const headers = { ...req.headers };
  if (headers.authorization !== undefined) headers.authorization = '<redacted>';
  return {
    method: req.method ?? '',
    url: req.url ?? '',
    headers,
    rawHeaders,
    authorizationSha256: authorization === undefined ? undefined : sha256(authorization),
    bearer: authorization !== undefined && /^Bearer \S+$/.test(authorization),
    bodySize: 0,
    bodySha256: undefined,
    complete: false,
    receivedAt: Date.now(),
    closedAt: undefined,
    aborted: false,
  };
}

/** Hashes the body as it streams in; resolves when it has ended (or never, for a caller that left). */
function consumeBody(req: IncomingMessage, entry: UpstreamRecord): Promise<void> {
  const hash = createHash('sha256');
  return new Promise((resolve) => {
    req.on('data', (chunk: Buffer) => {
      entry.bodySize += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      entry.bodySha256 = hash.digest('hex');
      entry.complete = true;
      resolve();
    });
    req.on('error', () => undefined);
  });
}

function decodeHeaderList(encoded: string | null): Array<[string, string]> {
  if (!encoded) return [];
  return JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Array<[string, string]>;
}

/** `respond?headers=` value for a list of [name, value] pairs. */
export function encodeHeaderList(pairs: ReadonlyArray<readonly [string, string]>): string {
  return Buffer.from(JSON.stringify(pairs)).toString('base64url');
}

async function answer(req: IncomingMessage, res: ServerResponse, entry: UpstreamRecord): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://upstream.invalid');
  const { name, argument } = endpointOf(url.pathname);
  const body = consumeBody(req, entry);
  const number = (param: string, fallback: number) => {
    const value = Number(url.searchParams.get(param));
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };

  switch (name) {
    case 'hang':
      return;
    case 'slow': {
      const timer = setTimeout(() => json(res, 200, { slept: number('ms', 1000) }), number('ms', 1000));
      res.on('close', () => clearTimeout(timer));
      return;
    }
    case 'sse': {
      await body;
      const count = number('count', 3);
      const interval = number('interval', 300);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      let sent = 0;
      const send = () => {
        sent += 1;
        res.write(`id: ${sent}\ndata: ${JSON.stringify({ n: sent, at: Date.now() })}\n\n`);
        if (sent === count) {
          clearInterval(timer);
          res.end();
        }
      };
      const timer = setInterval(send, interval);
      send();
      res.on('close', () => clearInterval(timer));
      return;
    }
    case 'stream': {
      await body;
      // Backpressure respected: only what the reader's side has not taken is buffered.
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      let left = number('kb', 1024) / 16;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const more = () => {
        while (left > 0) {
          left -= 1;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
      return;
    }
    case 'set-cookie': {
      await body;
      const payload = JSON.stringify({ ok: true });
      // Chunked on purpose (no Content-Length): Transfer-Encoding is this hop's business.
      res.writeHead(200, [
        ['Content-Type', 'application/json'],
        ['Set-Cookie', 'api_session=from-the-api; Path=/; HttpOnly'],
        ['Set-Cookie', 'cloakroom=overwritten-by-the-api; Path=/'],
        ['Connection', 'close, x-hop, X-Hop-Two'],
        ['Keep-Alive', 'timeout=77, max=999'],
        ['X-Hop', 'named-in-connection'],
        ['X-Hop-Two', 'named-in-connection'],
        ['Proxy-Connection', 'keep-alive'],
        ['Trailer', 'X-Checksum'],
        ['Transfer-Encoding', 'chunked'],
        ['X-Kept', 'kept'],
      ].flat());
      res.end(payload);
      return;
    }
    case 'respond': {
      await body;
      const pairs = decodeHeaderList(url.searchParams.get('headers'));
      res.writeHead(number('status', 200), pairs.flat());
      res.end(url.searchParams.get('body') ?? '');
      return;
    }
    case 'redirect':
      await body;
      res.writeHead(302, { location: 'http://elsewhere.invalid/', 'content-length': '0' });
      res.end();
      return;
    case 'upload':
      await body;
      json(res, 200, { size: entry.bodySize, sha256: entry.bodySha256 });
      return;
    case 'cache':
      await body;
      json(res, 200, { cached: true }, { 'cache-control': 'max-age=60' });
      return;
    case 'status': {
      await body;
      const status = Number(argument);
      json(res, Number.isInteger(status) && status >= 200 && status <= 599 ? status : 400, { status });
      return;
    }
    default:
      await body;
      json(res, 200, {
        method: entry.method,
        url: entry.url,
        headers: shownHeaders(req.headers),
        bodySize: entry.bodySize,
        bodySha256: entry.bodySha256,
      });
  }
}

async function listen(server: Server | ReturnType<typeof createNetServer>, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function startUpstream(host = '127.0.0.1'): Promise<TestUpstream> {
  const records: UpstreamRecord[] = [];
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    const entry = record(req);
    records.push(entry);
    res.on('close', () => {
      entry.closedAt = Date.now();
      entry.aborted = !res.writableFinished;
      for (const wake of waiters) wake();
    });
    for (const wake of waiters) wake();
    answer(req, res, entry).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  const port = await listen(server, host);

  return {
    url: `http://${host}:${port}`,
    host,
    port,
    records,
    reset() {
      records.length = 0;
    },
    waitFor(predicate, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = records.find(predicate);
          if (!found) return;
          clearTimeout(timer);
          clearInterval(poll);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          clearInterval(poll);
          waiters.delete(check);
          reject(new Error(`no upstream record matched within ${timeoutMs} ms`));
        }, timeoutMs);
        // Body progress wakes no one: look again now and then.
        const poll = setInterval(check, 10);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ResettingServer {
  url: string;
  port: number;
  /** Connections accepted (each was reset on its first bytes). */
  readonly connections: number;
  close(): Promise<void>;
}

/** A server that accepts the connection and resets it (TCP RST) as soon as the request arrives. */
export async function startResettingServer(host = '127.0.0.1'): Promise<ResettingServer> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => socket.resetAndDestroy());
  });
  const port = await listen(server, host);
  return {
    url: `http://${host}:${port}`,
    port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released): connecting to it is refused. */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const server = createNetServer();
  const port = await listen(server, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
