/**
 * The request id towards the API (`X-Request-Id`), kept apart from the header allow-list
 * (headers.ts) because its value is the broker's, not the browser's: the id of this
 * request as lib/http/request-id.ts decided it — the browser's own only when well-formed
 * — so the API's log lines can be joined to the broker's. (The W3C `traceparent` is set
 * by the upstream span, lib/ops/tracing.ts, when tracing is on.)
 */
import { currentRequestId } from '../http/request-context.ts';
import { isWellFormedRequestId, REQUEST_ID_HEADER } from '../http/request-id.ts';

/** Sets the request id on headers bound for the API (HTTP `Headers` or a WebSocket handshake's record). */
export function correlateUpstream(headers: Headers | Record<string, string>): void {
  const requestId = currentRequestId();
  if (headers instanceof Headers) {
    // Outside a request scope (a host that does not make one): the browser's own id by
    // the same rule, passed only when well-formed.
    if (requestId !== undefined) headers.set(REQUEST_ID_HEADER, requestId);
    else if (!isWellFormedRequestId(headers.get(REQUEST_ID_HEADER))) headers.delete(REQUEST_ID_HEADER);
    return;
  }
  if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
}
