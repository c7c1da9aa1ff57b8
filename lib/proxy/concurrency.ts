/**
 * Concurrency caps on upstream exchanges (M8): how many answers one route, and one
 * session on that route, may hold open at once. An exchange counts from the moment it
 * is admitted until its answer's body has ended, failed or been cancelled — the time it
 * holds an upstream connection. Beyond a cap the request is answered 429
 * `rate_limited` with `Retry-After` (CONTRACT.md) and never reaches the API, so a few
 * slow readers or a flood of event streams cannot starve everyone else of the API.
 *
 * Counted in this process: each instance protects its own connection pools, which are
 * per process too.
 */
import { BrokerError } from '../errors.ts';
import { metrics } from '../ops/metrics.ts';
import type { Route } from './route-table.ts';

/** Seconds a refused caller is told to wait: exchanges end continuously, so a short retry is fair. */
const RETRY_AFTER_SECONDS = 1;

/** Per route (the frozen route object of the configuration in force): the exchanges in flight, in all and per session id. */
interface RouteCounts {
  total: number;
  /** Entries are removed when they return to zero: the map holds live exchanges only. */
  bySession: Map<string, number>;
}
const counts = new WeakMap<Route, RouteCounts>();

function countsOf(route: Route): RouteCounts {
  let entry = counts.get(route);
  if (!entry) {
    entry = { total: 0, bySession: new Map() };
    counts.set(route, entry);
  }
  return entry;
}

/**
 * Admits one upstream exchange on `route`, for `sessionId` when there is a session, or
 * throws 429 `rate_limited`. Returns the release, which must be called when the
 * exchange is over (extra calls do nothing).
 */
export function admitExchange(route: Route, sessionId: string | undefined): () => void {
  const entry = countsOf(route);
  const sessionCount = sessionId === undefined ? 0 : (entry.bySession.get(sessionId) ?? 0);
  if (entry.total >= route.maxConcurrent || sessionCount >= route.maxConcurrentPerSession) {
    metrics.rateLimited.inc({ scope: 'api' });
    throw new BrokerError('rate_limited', {
      publicMessage: 'too many requests in progress; retry shortly',
      headers: [['retry-after', String(RETRY_AFTER_SECONDS)]],
    });
  }
  entry.total += 1;
  if (sessionId !== undefined) entry.bySession.set(sessionId, sessionCount + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    entry.total -= 1;
    if (sessionId === undefined) return;
    const left = (entry.bySession.get(sessionId) ?? 1) - 1;
    if (left <= 0) entry.bySession.delete(sessionId);
    else entry.bySession.set(sessionId, left);
  };
}

/** Exchanges in flight on a route (for tests and diagnostics). */
export function exchangesInFlight(route: Route): number {
  return counts.get(route)?.total ?? 0;
}
