import { Readable, Transform } from 'node:stream';
import { Agent, errors as undiciErrors } from 'undici';
import { BrokerError } from '../errors.ts';
import { startUpstreamSpan } from '../ops/tracing.ts';
import type { UpstreamTarget } from './path.ts';
import type { Route } from './route-table.ts';

/**
 * The forward itself: undici's pooled keep-alive `request`, streaming both ways.
 * No redirect is ever followed (the browser gets the 3xx as it is), no body is
 * buffered, and a browser that goes away cancels the upstream request.
 *
 * Two pools (M8): long-lived answers (server-sent events, a streaming route) hold their
 * connection for minutes, so they get their own, and however many are open they cannot
 * take the connections that ordinary calls to the same API need. Per-route and
 * per-session caps (lib/proxy/concurrency.ts) bound how many each may hold.
 */
const ordinaryPool = new Agent({
  keepAliveTimeout: 10_000,
  keepAliveMaxTimeout: 60_000,
  connections: 128,
  // An upper bound only: the route's deadline (below) covers connecting too, and is
  // usually shorter.
  connect: { timeout: 10_000 },
});

const streamingPool = new Agent({
  keepAliveTimeout: 10_000,
  keepAliveMaxTimeout: 60_000,
  connections: 1024,
  connect: { timeout: 10_000 },
});

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ReadableStream<Uint8Array> | null;
}

export interface ForwardOptions {
  /** The browser's request went away: the upstream exchange is abandoned. */
  signal: AbortSignal;
  /** Called once when the exchange is over: failed, answered without a body, or its body ended, failed or was cancelled. */
  onSettled?: () => void;
  /**
   * Aborted once the answer is flowing: its body is ended cleanly (the browser sees a
   * complete answer, not a reset) and the upstream request is abandoned, which frees its
   * connection. What closes a stream when its session ends (lib/session/lifetime-watch.ts).
   */
  endSignal?: AbortSignal;
}

/** Statuses whose answers have no body (RFC 9110 §6.4.1). */
const NO_BODY = new Set([101, 103, 204, 205, 304]);

/** Whether a request asks for a long-lived answer: a streaming route, or an EventSource (WHATWG HTML §9.2). */
export function isStreaming(route: Route, headers: Headers): boolean {
  return route.streaming || (headers.get('accept') ?? '').toLowerCase().includes('text/event-stream');
}

/** Why the deadline fired: told apart from the browser's own abort. */
class DeadlineExceeded extends Error {
  constructor() {
    super('the upstream deadline passed');
    this.name = 'DeadlineExceeded';
  }
}

export async function forward(
  target: UpstreamTarget,
  method: string,
  headers: Headers,
  body: ReadableStream<Uint8Array> | null,
  route: Route,
  options: ForwardOptions,
): Promise<UpstreamAnswer> {
  // The upstream span covers the whole exchange, body included: it ends when it settles.
  const span = startUpstreamSpan(method, route.path, target.origin);
  let failure: string | undefined;
  const settle = once(() => {
    span.end(failure);
    options.onSettled?.();
  });
  // M8: one deadline for everything before the answer's headers — waiting for a pooled
  // connection (undici's own timers start only once a socket is assigned, so a saturated
  // pool would otherwise queue forever), connecting, and the API's think time. An upload
  // that is still moving pushes it back (below), as undici's headers timeout does, so a
  // large upload on a slow link is not cut off. It is cleared once the headers are in:
  // the body is then bounded by the idle timeouts.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new DeadlineExceeded()), route.timeoutMs);
  let answered = false;
  const sendsBody = body !== null && method !== 'GET' && method !== 'HEAD';
  const upload = sendsBody ? Readable.fromWeb(body as import('node:stream/web').ReadableStream) : null;
  // undici destroys the body it was given when the request fails. Given its own stream,
  // it destroys only that, and the browser's body can still be drained below. That
  // stream takes a chunk only when undici has taken the one before (backpressure), so a
  // chunk passing through it is upload progress: none passes while the request waits
  // for a connection.
  const sent = upload
    ? new Transform({
        transform(chunk, _encoding, callback) {
          // Not once answered: refreshing a cleared timer would re-arm it.
          if (!answered) timer.refresh();
          callback(null, chunk);
        },
      })
    : null;
  if (upload && sent) {
    // The browser going away mid-upload fails the upstream request too.
    upload.on('error', (error) => sent.destroy(error));
    upload.pipe(sent);
  }
  const streaming = isStreaming(route, headers);
  const outgoing = Object.fromEntries(headers);
  span.inject(outgoing);
  try {
    // The dispatcher's own `request` with `origin` and the raw `path`: undici's top-level
    // `request(url)` would parse the URL again and re-encode the query.
    const answer = await (streaming ? streamingPool : ordinaryPool).request({
      origin: target.origin,
      path: target.path,
      method: method as 'GET',
      headers: outgoing,
      body: sent,
      signal: AbortSignal.any([options.signal, deadline.signal]),
      headersTimeout: route.timeoutMs,
      // Between two chunks from the API; a server-sent-events stream must send within this.
      bodyTimeout: route.timeoutMs,
    } as Parameters<typeof ordinaryPool.request>[0]);
    answered = true;
    clearTimeout(timer);
    span.answered(answer.statusCode);
    if (answer.statusCode < 200 || answer.statusCode > 599) {
      // A status a Response cannot carry (999, an unasked-for 1xx) is a broken upstream.
      answer.body.resume();
      throw new BrokerError('upstream_unavailable', { publicMessage: 'the API answered with an invalid status' });
    }
    const empty = method === 'HEAD' || NO_BODY.has(answer.statusCode);
    if (empty) {
      answer.body.resume();
      settle();
    }
    return {
      status: answer.statusCode,
      headers: answer.headers,
      body: empty ? null : pulledFrom(answer.body, route.timeoutMs, settle, options.endSignal),
    };
  } catch (error) {
    answered = true;
    clearTimeout(timer);
    const failed = classify(error, deadline.signal);
    failure = failed.code;
    settle();
    // The browser's body may still be arriving: read it to the end and drop it, as Node
    // does with a body nobody read, so that the browser's connection is not left
    // stalled behind it (its next request on that keep-alive connection would hang).
    if (upload && !upload.destroyed) {
      upload.unpipe();
      upload.resume();
    }
    throw failed;
  }
}

function once(callback: (() => void) | undefined): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    callback?.();
  };
}

/**
 * The upstream body as a web stream that reads a chunk only when one is wanted. Not
 * `Readable.toWeb`: its adapter pushes on 'data', and when the browser goes away (the
 * response body is cancelled) while a chunk is in flight it enqueues into the closed
 * stream and throws ERR_INVALID_STATE as an uncaught exception — a disconnect timed by
 * a client must not be able to do that to the server process. Cancelling ends the
 * iterator, which destroys undici's body and so aborts the upstream request.
 *
 * Idle-write timeout (M8): a browser that has not taken the next chunk within
 * `idleMs` — a slow reader holding its TCP window shut — has its answer cancelled,
 * which frees the upstream connection. undici's own body timeout cannot do this: it
 * does not run while backpressure pauses the socket.
 */
function pulledFrom(body: Readable, idleMs: number, settle: () => void, endSignal?: AbortSignal): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]();
  let cancelled = false;
  let idle: NodeJS.Timeout | undefined;
  const stop = async () => {
    if (cancelled) return;
    cancelled = true;
    clearTimeout(idle);
    endSignal?.removeEventListener('abort', endCleanly);
    try {
      await chunks.return?.();
    } finally {
      settle();
    }
  };
  let endCleanly = () => {};
  /** The body is over on its own: nothing is left for the end signal to end. */
  const finished = () => {
    cancelled = true;
    endSignal?.removeEventListener('abort', endCleanly);
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (!endSignal) return;
        endCleanly = () => {
          if (cancelled) return;
          // Closed before the upstream is abandoned: a pull still waiting on it then
          // finds `cancelled` set and enqueues nothing.
          controller.close();
          void stop();
        };
        if (endSignal.aborted) endCleanly();
        else endSignal.addEventListener('abort', endCleanly, { once: true });
      },
      async pull(controller) {
        clearTimeout(idle);
        try {
          const { done, value } = await chunks.next();
          if (cancelled) return;
          if (done) {
            finished();
            controller.close();
            settle();
            return;
          }
          controller.enqueue(value as Uint8Array);
          idle = setTimeout(() => {
            if (cancelled) return;
            controller.error(new BrokerError('upstream_timeout', { publicMessage: 'the browser stopped reading the answer' }));
            void stop();
          }, idleMs);
        } catch (error) {
          if (!cancelled) {
            finished();
            controller.error(error);
            settle();
          }
        }
      },
      cancel: stop,
    },
    // One chunk ahead at most: the next pull is the browser's side taking the last one.
    { highWaterMark: 1 },
  );
}

function classify(error: unknown, deadline: AbortSignal): BrokerError {
  if (error instanceof BrokerError) return error;
  if (deadline.aborted) return new BrokerError('upstream_timeout', { cause: error });
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new BrokerError('upstream_timeout', { cause: error });
  }
  // Refused, reset, DNS, TLS, aborted: the API could not be reached.
  return new BrokerError('upstream_unavailable', { cause: error });
}
