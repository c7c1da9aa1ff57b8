/**
 * One load run with autocannon (as a library), the same way for every contestant: the
 * same request machinery (a per-request `setupRequest` and an `onResponse` hook), so the
 * load generator does the same work whichever server it measures. The server's resident
 * memory is sampled from /proc while the run lasts.
 */
import autocannon, { type Result } from 'autocannon';
import { sampleResident } from './processes.ts';

/**
 * Session cookies handed out round-robin to every request of every connection, so that
 * with N sessions each connection cycles through distinct sessions. A Set-Cookie in an
 * answer replaces that session's cookie, as a browser would (the broker re-seals the
 * cookie now and then to record activity).
 */
export class CookiePool {
  readonly #jars: Array<Map<string, string>>;
  readonly #headers: string[];
  #next = 0;
  updates = 0;

  constructor(cookieHeaders: readonly string[]) {
    this.#headers = [...cookieHeaders];
    this.#jars = cookieHeaders.map((header) => {
      const jar = new Map<string, string>();
      for (const part of header.split('; ')) {
        const eq = part.indexOf('=');
        if (eq > 0) jar.set(part.slice(0, eq), part.slice(eq + 1));
      }
      return jar;
    });
  }

  get size(): number {
    return this.#headers.length;
  }

  take(): number {
    const i = this.#next;
    this.#next = (this.#next + 1) % this.#headers.length;
    return i;
  }

  header(i: number): string {
    return this.#headers[i];
  }

  /** Applies Set-Cookie values to session `i`'s jar (Max-Age=0 removes). */
  update(i: number, setCookies: readonly string[]): void {
    const jar = this.#jars[i];
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired) jar.delete(name);
      else jar.set(name, pair.slice(eq + 1).trim());
    }
    this.#headers[i] = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    this.updates++;
  }
}

export interface LoadSpec {
  /** Origin, e.g. http://127.0.0.1:3000. */
  origin: string;
  path: string;
  headers: Record<string, string>;
  cookies?: CookiePool;
  connections: number;
  /** Seconds; or `amount` requests. */
  duration?: number;
  amount?: number;
  /** The server process whose RSS is sampled. */
  serverPid: number;
}

export interface LoadFigures {
  requestsPerSecond: number;
  requests: number;
  durationSeconds: number;
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  peakRssBytes: number;
  cookieUpdates: number;
}

function setCookiesOf(headers: Record<string, string | string[]>): string[] {
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'set-cookie') return Array.isArray(value) ? value : [value];
  }
  return [];
}

export async function runLoad(spec: LoadSpec): Promise<LoadFigures> {
  const pool = spec.cookies;
  const updatesBefore = pool?.updates ?? 0;
  const sampler = sampleResident(spec.serverPid);
  let result: Result;
  let peak = 0;
  try {
    result = await autocannon({
      url: spec.origin,
      connections: spec.connections,
      pipelining: 1,
      timeout: 10,
      ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.duration ?? 10 }),
      requests: [
        {
          method: 'GET',
          path: spec.path,
          setupRequest(request, context) {
            const headers: Record<string, string> = { ...spec.headers };
            if (pool) {
              const i = pool.take();
              context.session = i;
              headers.cookie = pool.header(i);
            }
            return { ...request, headers };
          },
          onResponse(_status, _body, context, headers) {
            if (!pool) return;
            const setCookies = setCookiesOf(headers);
            if (setCookies.length > 0) pool.update(context.session as number, setCookies);
          },
        },
      ],
    });
  } finally {
    peak = sampler.stop();
  }
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count;
  const requests = result.requests.total;
  return {
    requestsPerSecond: result.duration > 0 ? requests / result.duration : 0,
    requests,
    durationSeconds: result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
    peakRssBytes: peak,
    cookieUpdates: (pool?.updates ?? 0) - updatesBefore,
  };
}
