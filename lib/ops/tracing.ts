/**
 * The broker's spans, through @opentelemetry/api only. Until lib/ops/tracing-sdk.ts has
 * registered an SDK (OTEL_* configured), the API's global tracer is its no-op one: every
 * call below returns at once, nothing is recorded, no header is added. The SDK itself is
 * never even loaded then.
 *
 * Spans (README "Traces"):
 *   `{METHOD} {route}` (SERVER)  one per broker request and WebSocket upgrade; `route` is the
 *                                endpoint's path from lib/http/endpoints.ts, refined by the
 *                                proxy to the route table's `path` — never the request's own
 *                                path or query.
 *   `token refresh` (INTERNAL)   the refresh at the provider (lib/tokens/manager.ts), once
 *                                per single-flight.
 *   `{METHOD} upstream` (CLIENT) the call to the API (lib/proxy/forward.ts, the WebSocket
 *                                handshake); its context travels as W3C `traceparent`.
 *
 * Attributes hold configuration and outcomes only (method, route, status, error code,
 * the upstream's configured host): never a cookie, token, code, query string, user or
 * session id, or the client's address.
 *
 * A browser's `traceparent` is not trusted as a parent. The broker is a public origin:
 * a client choosing the trace id could splice its requests into someone else's trace,
 * or set the sampled flag on every call to make the broker record (and pay for) all of
 * them; W3C Trace Context (§8, security considerations) leaves it to each service to
 * decide whether to trust an incoming context. The request span starts a new trace and
 * carries the browser's context as a span link, so a front-end trace can still be
 * correlated.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Link,
  type Span,
} from '@opentelemetry/api';

const TRACER_NAME = 'cloakroom';

/**
 * Set by lib/ops/tracing-sdk.ts once an SDK is registered (on globalThis: every module
 * copy of the process sees it). Until then the request and upstream spans are skipped
 * outright rather than made as no-ops: that spares the header reads of the link and the
 * context switch, ~0.8 µs per request (bench/tracing-off.ts).
 */
export const TRACING_ACTIVE = Symbol.for('cloakroom.tracingActive');
function tracingActive(): boolean {
  return (globalThis as { [TRACING_ACTIVE]?: boolean })[TRACING_ACTIVE] === true;
}

function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/** Headers as a plain getter, for the propagator. */
const HEADERS_GETTER = {
  keys: (carrier: Headers) => [...carrier.keys()],
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
};

/** The browser's trace context, if well-formed, as a link (never a parent). */
function linkToClientTrace(headers: Headers): Link[] {
  if (!headers.has('traceparent')) return [];
  const remote = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, headers, HEADERS_GETTER));
  if (!remote || !trace.isSpanContextValid(remote)) return [];
  // The ids and flags only: the browser's `tracestate` is free text of its choosing and
  // is neither exported nor passed on.
  const linked = { traceId: remote.traceId, spanId: remote.spanId, traceFlags: remote.traceFlags, isRemote: true };
  return [{ context: linked, attributes: { 'cloakroom.link': 'client_traceparent' } }];
}

/**
 * Runs one broker request inside its span: a new root (see above), named from the
 * endpoint's configured path. The span ends when the handler has its answer (the
 * answer's body may still stream; the upstream span covers that).
 */
export async function traceRequest(method: string, endpointPath: string, headers: Headers, handle: () => Promise<Response>): Promise<Response> {
  if (!tracingActive()) return handle();
  const attributes: Attributes = { 'http.request.method': method, 'http.route': endpointPath };
  return tracer().startActiveSpan(
    `${method} ${endpointPath}`,
    { kind: SpanKind.SERVER, root: true, links: linkToClientTrace(headers), attributes },
    async (span) => {
      try {
        const response = await handle();
        span.setAttribute('http.response.status_code', response.status);
        if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        return response;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * A WebSocket upgrade on `/api/*` (the front door's, lib/proxy/websocket.ts): the same
 * SERVER span as a request, a new root too, ended once the handshake is relayed or refused.
 */
export async function traceUpgrade(run: () => Promise<void>): Promise<void> {
  if (!tracingActive()) return run();
  return tracer().startActiveSpan('GET /api', { kind: SpanKind.SERVER, root: true, attributes: { 'http.request.method': 'GET', 'http.route': '/api', 'cloakroom.websocket': true } }, async (span) => {
    try {
      await run();
    } finally {
      span.end();
    }
  });
}

/** The proxy matched a route: the request span is named after the route table's `path`. */
export function nameRequestRoute(method: string, routePath: string): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  span.updateName(`${method} ${routePath}`);
  span.setAttribute('http.route', routePath);
}

/** The contract's error code of the answer (`unauthenticated`, `rate_limited`, …), on the active span. */
export function noteErrorCode(code: string): void {
  trace.getActiveSpan()?.setAttribute('cloakroom.error_code', code);
}

/** The refresh's outcome (`ok`, `rejected`, `failed`: the names of `cloakroom_refresh_total`), on the refresh span. */
export function noteRefreshOutcome(outcome: 'ok' | 'rejected' | 'failed'): void {
  trace.getActiveSpan()?.setAttribute('cloakroom.refresh.outcome', outcome);
}

/**
 * Runs `work` in an INTERNAL child span; a thrown error marks it failed by its name and
 * the contract's code (`code` of a BrokerError), never its message, which may quote a
 * provider's answer.
 */
export async function inSpan<T>(name: string, attributes: Attributes, work: () => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.INTERNAL, attributes }, async (span) => {
    try {
      return await work();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
      const code = (error as { code?: unknown } | null)?.code;
      if (typeof code === 'string') span.setAttribute('cloakroom.error_code', code);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The span of one call to an API, ended by the caller when the exchange is over. */
export interface UpstreamSpan {
  /** Sets `traceparent` (and `tracestate`) on the request to the API: the API's spans join this trace as children of this span. */
  inject(headers: Record<string, string>): void;
  answered(status: number): void;
  end(failure?: string): void;
}

/**
 * Starts the CLIENT span of a call to `origin` (the route's configured upstream). When
 * tracing is off the browser's own `traceparent` still passes to the API as the
 * allow-list has it (lib/proxy/headers.ts); when on, the broker's replaces it, and a
 * browser's `tracestate` is dropped with it (it belongs to the trace it came with).
 */
const NO_UPSTREAM_SPAN: UpstreamSpan = { inject() {}, answered() {}, end() {} };

export function startUpstreamSpan(method: string, routePath: string, origin: string): UpstreamSpan {
  if (!tracingActive()) return NO_UPSTREAM_SPAN;
  const url = new URL(origin);
  const span: Span = tracer().startSpan(`${method} upstream`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'http.request.method': method,
      'cloakroom.route': routePath,
      'server.address': url.hostname,
      'server.port': Number(url.port || (url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80)),
    },
  });
  return {
    inject(headers) {
      if (!trace.isSpanContextValid(span.spanContext())) return;
      delete headers.traceparent;
      delete headers.tracestate;
      propagation.inject(trace.setSpan(context.active(), span), headers);
    },
    answered(status) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    },
    end(failure) {
      if (failure) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute('error.type', failure);
      }
      span.end();
    },
  };
}
