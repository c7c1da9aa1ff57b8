/**
 * Requests exactly as written, for tests that must get a path or a header to the broker
 * unnormalised: `fetch` resolves dot segments, turns `\` into `/` and refuses many
 * headers. `rawRequest` uses node:http with the path and header names as given;
 * `rawSocketRequest` writes bytes on a TCP socket, for request-targets that no HTTP
 * client will send (spaces, control characters).
 */
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** `[name, value, name, value...]` as received. */
  rawHeaders: string[];
  body: Buffer;
}

export interface RawRequestOptions {
  method?: string;
  /** The request-target, sent as is (non-ASCII as its UTF-8 bytes). */
  path: string;
  /** Pairs in the order and letter case given; a name may repeat. */
  headers?: ReadonlyArray<readonly [string, string]>;
  body?: string | Buffer;
  signal?: AbortSignal;
  /** Default: a fresh connection per request. */
  agent?: Agent;
}

/** Characters node:http refuses in a request-target. */
const UNSENDABLE = /[^\u0021-\u00ff]/;

export function isSendablePath(path: string): boolean {
  return !UNSENDABLE.test(Buffer.from(path, 'utf8').toString('latin1'));
}

export function rawRequest(origin: string, options: RawRequestOptions): Promise<RawAnswer> {
  const target = new URL(origin);
  // node:http writes the request line in latin1: the UTF-8 bytes, one char each.
  const path = Buffer.from(options.path, 'utf8').toString('latin1');
  const headers: string[] = [];
  let hasHost = false;
  for (const [name, value] of options.headers ?? []) {
    if (name.toLowerCase() === 'host') hasHost = true;
    headers.push(name, value);
  }
  if (!hasHost) headers.unshift('Host', target.host);
  // With headers given as a list node:http frames nothing itself: a body needs its length.
  const framed = (options.headers ?? []).some(([name]) => /^(content-length|transfer-encoding)$/i.test(name));
  if (options.body !== undefined && !framed) headers.push('Content-Length', String(Buffer.byteLength(options.body)));
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      method: options.method ?? 'GET',
      path,
      headers,
      agent: options.agent ?? false,
      setHost: false,
      // A test must fail, not hang, when an answer never comes.
      signal: options.signal ?? AbortSignal.timeout(10_000),
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
    });
    req.end(options.body);
  });
}

/** Writes `head` (the request line and headers, CRLF-separated, no final blank line) and reads until close. */
export function rawSocketRequest(port: number, head: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(Buffer.from(`${head}\r\nConnection: close\r\n\r\n`, 'utf8'));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: status ? Number(status[1]) : 0, text });
    });
  });
}
