import { Readable } from 'node:stream';
import { Agent, errors as undiciErrors, request as undiciRequest } from 'undici';
import { BrokerError } from '../errors.ts';
import type { Route } from './route-table.ts';

/**
 * The forward itself: undici's pooled keep-alive `request`, streaming both ways.
 * No redirect is ever followed (the browser gets the 3xx as it is), no body is
 * buffered, and a browser that goes away cancels the upstream request.
 */
const agent = new Agent({
  keepAliveTimeout: 10_000,
  keepAliveMaxTimeout: 60_000,
  connections: 128,
  // Upstreams are configured origins; the per-route timeout bounds connecting too.
  connect: { timeout: 10_000 },
});

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ReadableStream<Uint8Array> | null;
}

/** Statuses whose answers have no body (RFC 9110 §6.4.1). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

export async function forward(
  url: URL,
  method: string,
  headers: Headers,
  body: ReadableStream<Uint8Array> | null,
  route: Route,
  signal: AbortSignal,
): Promise<UpstreamAnswer> {
  const sendsBody = body !== null && method !== 'GET' && method !== 'HEAD';
  try {
    const answer = await undiciRequest(url, {
      dispatcher: agent,
      method: method as 'GET',
      headers: Object.fromEntries(headers),
      body: sendsBody ? Readable.fromWeb(body as import('node:stream/web').ReadableStream) : null,
      signal,
      headersTimeout: route.timeoutMs,
      // Between two chunks; a server-sent-events stream must send within this.
      bodyTimeout: route.timeoutMs,
      maxRedirections: 0,
    } as Parameters<typeof undiciRequest>[1]);
    const empty = method === 'HEAD' || NO_BODY.has(answer.statusCode);
    if (empty) answer.body.resume();
    return {
      status: answer.statusCode,
      headers: answer.headers,
      body: empty ? null : (Readable.toWeb(answer.body) as ReadableStream<Uint8Array>),
    };
  } catch (error) {
    throw classify(error);
  }
}

function classify(error: unknown): BrokerError {
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new BrokerError('upstream_timeout', { cause: error });
  }
  // Refused, reset, DNS, TLS, aborted: the API could not be reached.
  return new BrokerError('upstream_unavailable', { cause: error });
}
