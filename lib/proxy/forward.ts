import { PassThrough, Readable } from 'node:stream';
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
  const upload = sendsBody ? Readable.fromWeb(body as import('node:stream/web').ReadableStream) : null;
  // undici destroys the body it was given when the request fails. Given a PassThrough, it
  // destroys only that, and the browser's body can still be drained below.
  const sent = upload ? new PassThrough() : null;
  if (upload && sent) {
    // The browser going away mid-upload fails the upstream request too.
    upload.on('error', (error) => sent.destroy(error));
    upload.pipe(sent);
  }
  try {
    const answer = await undiciRequest(url, {
      dispatcher: agent,
      method: method as 'GET',
      headers: Object.fromEntries(headers),
      body: sent,
      signal,
      headersTimeout: route.timeoutMs,
      // Between two chunks; a server-sent-events stream must send within this.
      bodyTimeout: route.timeoutMs,
      maxRedirections: 0,
    } as Parameters<typeof undiciRequest>[1]);
    if (answer.statusCode < 200 || answer.statusCode > 599) {
      // A status a Response cannot carry (999, an unasked-for 1xx) is a broken upstream.
      answer.body.resume();
      throw new BrokerError('upstream_unavailable', { publicMessage: 'the API answered with an invalid status' });
    }
    const empty = method === 'HEAD' || NO_BODY.has(answer.statusCode);
    if (empty) answer.body.resume();
    return {
      status: answer.statusCode,
      headers: answer.headers,
      body: empty ? null : pulledFrom(answer.body),
    };
  } catch (error) {
    // The browser's body may still be arriving: read it to the end and drop it, as Node
    // does with a body nobody read, so that the browser's connection is not left
    // stalled behind it (its next request on that keep-alive connection would hang).
    if (upload && !upload.destroyed) {
      upload.unpipe();
      upload.resume();
    }
    throw classify(error);
  }
}

/**
 * The upstream body as a web stream that reads a chunk only when one is wanted. Not
 * `Readable.toWeb`: its adapter pushes on 'data', and when the browser goes away (the
 * response body is cancelled) while a chunk is in flight it enqueues into the closed
 * stream and throws ERR_INVALID_STATE as an uncaught exception — a disconnect timed by
 * a client must not be able to do that to the server process. Cancelling ends the
 * iterator, which destroys undici's body and so aborts the upstream request.
 */
function pulledFrom(body: Readable): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]();
  let cancelled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await chunks.next();
        if (cancelled) return;
        if (done) controller.close();
        else controller.enqueue(value as Uint8Array);
      } catch (error) {
        if (!cancelled) controller.error(error);
      }
    },
    async cancel() {
      cancelled = true;
      await chunks.return?.();
    },
  });
}

function classify(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new BrokerError('upstream_timeout', { cause: error });
  }
  // Refused, reset, DNS, TLS, aborted: the API could not be reached.
  return new BrokerError('upstream_unavailable', { cause: error });
}
