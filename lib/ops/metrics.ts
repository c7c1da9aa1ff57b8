import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/**
 * The process's one metrics registry (CONTRACT.md, "Metrics"). Anchored on `globalThis`
 * because Next.js loads a module once per bundle: a registry per module copy would split
 * or duplicate counters (prom-client #640, #196), and `next dev` re-evaluating this file
 * would throw "already registered". Each metric is created at most once per process for
 * the same reason. No label ever holds a user, a session id or a token.
 */
const SESSION_END_REASONS = ['logout', 'backchannel', 'revoked', 'expired', 'idle', 'anomaly'] as const;

const REGISTRY_KEY = Symbol.for('cloakroom.metrics.registry');
type Anchored = typeof globalThis & { [REGISTRY_KEY]?: Registry };

function registry(): Registry {
  const anchored = globalThis as Anchored;
  if (!anchored[REGISTRY_KEY]) {
    const created = new Registry();
    collectDefaultMetrics({ register: created });
    anchored[REGISTRY_KEY] = created;
  }
  return anchored[REGISTRY_KEY];
}

function once<T extends Metric>(name: string, create: (registers: Registry[]) => T): T {
  const r = registry();
  return (r.getSingleMetric(name) as T | undefined) ?? create([r]);
}

/**
 * Every known label value exported from the start, at 0: a series that first appears at 1
 * is invisible to `increase()` and `rate()` (Prometheus cannot tell it from a restart), so
 * the first refresh-token reuse or anomaly would never fire an alert.
 */
function withZeros(counter: Counter, label: string, values: readonly string[]): Counter {
  for (const value of values) counter.inc({ [label]: value }, 0);
  return counter;
}

export const metrics = {
  registry,
  proxyRequests: once('cloakroom_proxy_requests_total', (registers) =>
    new Counter({ name: 'cloakroom_proxy_requests_total', help: 'Proxied API calls by route and answer status', labelNames: ['route', 'status'], registers }),
  ),
  proxyDuration: once('cloakroom_proxy_duration_seconds', (registers) =>
    new Histogram({ name: 'cloakroom_proxy_duration_seconds', help: 'Time from the request to the answer headers (the upstream\'s, or the broker\'s refusal), by route', labelNames: ['route'], registers }),
  ),
  refresh: once('cloakroom_refresh_total', (registers) =>
    withZeros(new Counter({ name: 'cloakroom_refresh_total', help: 'Token refreshes by outcome: ok, adopted, rejected, failed', labelNames: ['outcome'], registers }), 'outcome', ['ok', 'adopted', 'rejected', 'failed']),
  ),
  tokenExchange: once('cloakroom_token_exchange_total', (registers) =>
    new Counter({ name: 'cloakroom_token_exchange_total', help: 'RFC 8693 token exchanges at the provider by outcome: ok, rejected, failed', labelNames: ['outcome'], registers }),
  ),
  refreshTokenReuse: once('cloakroom_refresh_token_reuse_total', (registers) =>
    new Counter({ name: 'cloakroom_refresh_token_reuse_total', help: 'Spent refresh tokens presented after the grace window (two holders of one session)', registers }),
  ),
  sessionsStarted: once('cloakroom_sessions_started_total', (registers) =>
    new Counter({ name: 'cloakroom_sessions_started_total', help: 'Sign-ins that created a session', registers }),
  ),
  sessionsEnded: once('cloakroom_sessions_ended_total', (registers) =>
    withZeros(new Counter({ name: 'cloakroom_sessions_ended_total', help: 'Sessions ended, by reason', labelNames: ['reason'], registers }), 'reason', SESSION_END_REASONS),
  ),
  sessionAnomalies: once('cloakroom_session_anomalies_total', (registers) =>
    withZeros(
      new Counter({ name: 'cloakroom_session_anomalies_total', help: 'Changes of a session\'s network or browser since sign-in (first sighting of each new value); network_and_browser is the anomaly', labelNames: ['kind'], registers }),
      'kind',
      ['network', 'browser', 'network_and_browser'],
    ),
  ),
  rateLimited: once('cloakroom_rate_limited_total', (registers) =>
    withZeros(new Counter({ name: 'cloakroom_rate_limited_total', help: 'Requests refused by a rate limit, by scope', labelNames: ['scope'], registers }), 'scope', ['api', 'auth']),
  ),
  storeErrors: once('cloakroom_store_errors_total', (registers) =>
    new Counter({ name: 'cloakroom_store_errors_total', help: 'Shared store operations that failed or timed out', registers }),
  ),
  storeEntries: once('cloakroom_store_entries', (registers) =>
    new Gauge({ name: 'cloakroom_store_entries', help: 'Entries held by the in-process memory store', registers }),
  ),
};

export type SessionEndReason = (typeof SESSION_END_REASONS)[number];
