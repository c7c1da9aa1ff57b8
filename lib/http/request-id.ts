/**
 * The request id (`X-Request-Id`): one id per broker request, on every log line written
 * for it, on the answer, and on the request to the API, so that an operator can follow
 * one call through the browser's report, the broker's log and the API's.
 *
 * A client's own id is kept only when well-formed: 1–128 characters of
 * `A–Z a–z 0–9 . _ : -`. That covers UUIDs, ULIDs, W3C trace ids and the ids of common
 * load balancers (AWS ALB's `Root=1-…` aside: its `=` and `;` are refused) while refusing
 * anything that could forge a log line or a header (CR, LF, quotes, spaces, commas
 * joining two header lines) or flood the log (length). Anything else is replaced by a
 * fresh random UUID, never echoed, never logged.
 */
import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';

const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/;

export function isWellFormedRequestId(value: string | null | undefined): value is string {
  return typeof value === 'string' && WELL_FORMED.test(value);
}

/** The client's id when well-formed, a new one otherwise (absent, malformed, or repeated: Node joins repeats with ", "). */
export function requestIdFrom(value: string | readonly string[] | null | undefined): string {
  return typeof value === 'string' && isWellFormedRequestId(value) ? value : randomUUID();
}
