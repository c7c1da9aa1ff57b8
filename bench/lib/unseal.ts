/**
 * What reading the session cookie costs, measured in this process:
 *  - the decrypt itself: iron-session `unsealData` of a real session seal, N calls;
 *  - how often the broker's unseal cache spares it: the broker's own proxy handler
 *    (lib/proxy/handler.ts, the code `next start` runs) driven in-process with the same
 *    access pattern as the load runs, reading its `unsealStats` counters. The running
 *    server exposes no such counters, and the product gets no endpoint for a benchmark.
 */
import { createHash } from 'node:crypto';
import { unsealData } from 'iron-session';
import { loadConfig } from '../../lib/config/load.ts';
import { handleProxy } from '../../lib/proxy/handler.ts';
import { unsealStats } from '../../lib/session/manager.ts';
import { MemoryStore } from '../../lib/stores/memory.ts';
import { CookiePool } from './load.ts';
import { BROWSER_API_HEADERS } from './signin.ts';

export interface UnsealCost {
  calls: number;
  microsecondsPerUnseal: number;
  /** The cache's own lookup: a SHA-256 of the seal. */
  microsecondsPerCacheKey: number;
  sealBytes: number;
}

export async function measureUnsealCost(env: Record<string, string>, sealed: string, calls: number): Promise<UnsealCost> {
  const config = loadConfig(env);
  const options = { password: config.session.unsealPasswords, ttl: config.session.absoluteTimeout };
  const check = await unsealData<{ id?: string }>(sealed, options);
  if (typeof check.id !== 'string') throw new Error('the seal did not unseal to a session');
  for (let i = 0; i < Math.min(200, calls); i++) await unsealData(sealed, options);

  let start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await unsealData(sealed, options);
  const unsealNs = Number(process.hrtime.bigint() - start);

  start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) createHash('sha256').update(sealed).digest('base64url');
  const digestNs = Number(process.hrtime.bigint() - start);

  return {
    calls,
    microsecondsPerUnseal: unsealNs / calls / 1000,
    microsecondsPerCacheKey: digestNs / calls / 1000,
    sealBytes: sealed.length,
  };
}

export interface CacheFigures {
  pattern: string;
  sessions: number;
  requests: number;
  concurrency: number;
  unseals: number;
  cacheHits: number;
  hitRatio: number;
  non200: number;
  seconds: number;
}

/**
 * `requests` calls through the broker's proxy handler, `concurrency` at a time, each
 * taking the next of `cookies` round-robin (as the load runs do), with Set-Cookie
 * applied as a browser would.
 */
export async function measureUnsealCache(options: {
  env: Record<string, string>;
  apiUrl: string;
  cookies: readonly string[];
  pattern: string;
  requests: number;
  concurrency: number;
  timeLimitMs: number;
}): Promise<CacheFigures> {
  const config = loadConfig(options.env);
  const store = new MemoryStore();
  const pool = new CookiePool(options.cookies);
  const before = { ...unsealStats };
  const deadline = Date.now() + options.timeLimitMs;
  const started = Date.now();
  let sent = 0;
  let non200 = 0;
  const worker = async () => {
    while (sent < options.requests && Date.now() < deadline) {
      sent++;
      const i = pool.take();
      const request = new Request(options.apiUrl, { headers: { ...BROWSER_API_HEADERS, cookie: pool.header(i) } });
      const response = await handleProxy(request, config, store);
      await response.arrayBuffer();
      if (response.status !== 200) non200++;
      const setCookies = response.headers.getSetCookie();
      if (setCookies.length > 0) pool.update(i, setCookies);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    store.close();
  }
  const unseals = unsealStats.unseals - before.unseals;
  const cacheHits = unsealStats.cacheHits - before.cacheHits;
  return {
    pattern: options.pattern,
    sessions: options.cookies.length,
    requests: sent,
    concurrency: options.concurrency,
    unseals,
    cacheHits,
    hitRatio: unseals + cacheHits > 0 ? cacheHits / (unseals + cacheHits) : 0,
    non200,
    seconds: (Date.now() - started) / 1000,
  };
}
