import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { noteErrorCode } from '../ops/tracing.ts';
import { StoreUnavailableError } from '../stores/store.ts';

/** Every JSON answer of the broker's own is private to one user: never cached anywhere. */
export function jsonResponse(body: unknown, status = 200, headers: HeadersInit = []): Response {
  const h = new Headers(headers);
  h.set('content-type', 'application/json; charset=utf-8');
  h.set('cache-control', 'no-store');
  return new Response(JSON.stringify(body), { status, headers: h });
}

/**
 * Maps any thrown value to the contract's error body. A `BrokerError` keeps its code and
 * status; anything else is an unexpected bug — logged by name only (a message may
 * embed a token) and answered as a bare 500.
 */
export function errorResponse(error: unknown, extraHeaders: Array<[string, string]> = []): Response {
  if (causedByStoreOutage(error)) {
    // An unreachable store says nothing about the session: answering as if it had ended
    // (401, a cleared cookie) would sign every user out during a Redis blip. Callers add
    // no session-clearing cookie on this path (the store fails before they decide).
    log.warn('store_unavailable', {});
    noteErrorCode('store_unavailable');
    return jsonResponse({ error: 'store_unavailable' }, 503, [...extraHeaders, ['retry-after', '1']]);
  }
  if (error instanceof BrokerError) {
    noteErrorCode(error.code);
    const body: Record<string, string> = { error: error.code };
    if (error.publicMessage) body.message = error.publicMessage;
    const headers = new Headers();
    for (const [name, value] of [...error.headers, ...extraHeaders]) headers.append(name, value);
    return jsonResponse(body, error.status, headers);
  }
  log.error('unexpected_error', { errorName: error instanceof Error ? error.name : typeof error });
  noteErrorCode('server_error');
  return jsonResponse({ error: 'server_error' }, 500, extraHeaders);
}

/** A `StoreUnavailableError`, also when a handler wrapped it as the cause of another error. */
export function causedByStoreOutage(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof StoreUnavailableError) return true;
  }
  return false;
}

export function methodNotAllowed(allow: readonly string[]): Response {
  return errorResponse(new BrokerError('method_not_allowed', { headers: [['allow', allow.join(', ')]] }));
}

/** Browsers ask for HTML on navigations; `fetch` and API clients don't. */
export function wantsHtml(request: Request): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept.includes('text/html');
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}
