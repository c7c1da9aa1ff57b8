/**
 * `node bench/exchange.ts [--quick]`: what a route with `"exchange"` (RFC 8693, issue 12)
 * costs beside the plain bearer route, through `npm start` with the development provider:
 *
 *  - cache hit, throughput: autocannon on one session against `/api/demo` (the plain
 *    route: the session's own per-resource token) and `/api/orders` (the exchanged
 *    token, cached in the store), the two alternated over rounds, medians reported;
 *  - cache miss, latency: for each of K fresh sessions, its first call to the exchange
 *    route (the broker exchanges at the provider) against its second (cached) and a plain
 *    call, one request at a time; medians and p90 reported, and the exchanges the
 *    provider counted (must equal K).
 *
 * Both upstreams are the same demo API code (demo/api.ts: jose, the provider's JWKS), so
 * the difference is the broker's. Figures go to stdout and bench/results/exchange-<date>.json
 * (a tmp dir with --quick). Not part of `npm run bench`'s main table: run it on its own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoApi, type DemoApi } from '../demo/api.ts';
import { startProductionStack, type ProductionStack } from '../test/helpers/production-stack.ts';
import { CookiePool, runLoad, type LoadFigures } from './lib/load.ts';
import { BROWSER_API_HEADERS, signInAtBroker } from './lib/signin.ts';

const QUICK = process.argv.includes('--quick');
const PLAN = QUICK ? { rounds: 1, seconds: 3, connections: 10, missSessions: 8 } : { rounds: 3, seconds: 10, connections: 10, missSessions: 40 };
const ORDERS = 'urn:cloakroom:bench-orders';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
const median = (values: number[]) => quantile(values, 0.5);

async function timedCall(origin: string, path: string, cookie: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(new URL(path, origin), { headers: { ...BROWSER_API_HEADERS, cookie } });
  await response.arrayBuffer();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
  return ms;
}

async function main(): Promise<number> {
  let ordersApi: DemoApi | undefined;
  let stack: ProductionStack | undefined;
  try {
    stack = await startProductionStack({
      npmStart: true,
      // Long-lived tokens: no refresh or re-exchange during the hit runs.
      idp: { accessTokenTtl: 3600, exchangeAudiences: { [ORDERS]: { scope: 'orders:read', accessTokenTtl: 3600 } } },
      env: { LOG_LEVEL: 'warn', RATE_LIMIT_API: '0', RATE_LIMIT_AUTH: '0' },
      extraRoutes: async (idp) => {
        ordersApi = await startDemoApi({ port: 0, issuer: idp.issuer, audience: ORDERS, name: 'orders' });
        return [{ path: '/api/orders', upstream: ordersApi.url, auth: 'required', methods: ['GET'], exchange: { audience: ORDERS, scope: 'orders:read' } }];
      },
    });
    const origin = stack.url;
    const creds = { username: 'alice', password: 'alice-password' };

    // Cache hit: one session that already holds both tokens.
    const cookie = await signInAtBroker(origin, creds, '/api/demo/x');
    await timedCall(origin, '/api/orders/x', cookie);
    const run = (path: string, seconds: number) =>
      runLoad({ origin, path, headers: BROWSER_API_HEADERS, cookies: new CookiePool([cookie]), connections: PLAN.connections, duration: seconds, serverPid: stack!.pid });
    await run('/api/demo/x', 2);
    await run('/api/orders/x', 2);
    const plain: LoadFigures[] = [];
    const exchanged: LoadFigures[] = [];
    for (let round = 0; round < PLAN.rounds; round++) {
      plain.push(await run('/api/demo/x', PLAN.seconds));
      exchanged.push(await run('/api/orders/x', PLAN.seconds));
    }
    const hit = {
      connections: PLAN.connections,
      plainRequestsPerSecond: median(plain.map((f) => f.requestsPerSecond)),
      exchangedRequestsPerSecond: median(exchanged.map((f) => f.requestsPerSecond)),
      plainP99Ms: median(plain.map((f) => f.latencyMs.p99)),
      exchangedP99Ms: median(exchanged.map((f) => f.latencyMs.p99)),
      errors: [...plain, ...exchanged].reduce((sum, f) => sum + f.errors + f.timeouts + Object.entries(f.statusCodes).filter(([code]) => code !== '200').reduce((s, [, n]) => s + n, 0), 0),
    };

    // Cache miss: the first exchanged call of each fresh session.
    const exchangesBefore = stack.idp.stats.exchangeGrants;
    const miss: number[] = [];
    const hitAfter: number[] = [];
    const plainSingle: number[] = [];
    for (let i = 0; i < PLAN.missSessions; i++) {
      const fresh = await signInAtBroker(origin, creds, '/api/demo/x');
      plainSingle.push(await timedCall(origin, '/api/demo/x', fresh));
      miss.push(await timedCall(origin, '/api/orders/x', fresh));
      hitAfter.push(await timedCall(origin, '/api/orders/x', fresh));
    }
    const missFigures = {
      sessions: PLAN.missSessions,
      exchangesAtProvider: stack.idp.stats.exchangeGrants - exchangesBefore,
      plainMedianMs: median(plainSingle),
      hitMedianMs: median(hitAfter),
      missMedianMs: median(miss),
      missP90Ms: quantile(miss, 0.9),
    };

    const results = { date: new Date().toISOString(), quick: QUICK, machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version }, plan: PLAN, cacheHit: hit, cacheMiss: missFigures };
    const outDir = QUICK ? join(os.tmpdir(), 'cloakroom-bench-exchange') : join(ROOT, 'bench/results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `exchange-${results.date.slice(0, 10)}.json`);
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

    const ratio = hit.exchangedRequestsPerSecond / hit.plainRequestsPerSecond;
    process.stdout.write(
      [
        `token exchange${QUICK ? ' (QUICK: figures indicative only)' : ''} — ${results.date}`,
        `cache hit   ${hit.connections} connections, 1 session: plain ${hit.plainRequestsPerSecond.toFixed(0)} req/s (p99 ${hit.plainP99Ms} ms), exchanged ${hit.exchangedRequestsPerSecond.toFixed(0)} req/s (p99 ${hit.exchangedP99Ms} ms): ${ratio.toFixed(2)} × plain; ${hit.errors} errors`,
        `cache miss  ${missFigures.sessions} fresh sessions, one call at a time: plain ${missFigures.plainMedianMs.toFixed(2)} ms, exchanged hit ${missFigures.hitMedianMs.toFixed(2)} ms, miss ${missFigures.missMedianMs.toFixed(2)} ms (p90 ${missFigures.missP90Ms.toFixed(2)} ms); ${missFigures.exchangesAtProvider} exchanges at the provider`,
        `wrote ${file}`,
        '',
      ].join('\n'),
    );
    return hit.errors === 0 && missFigures.exchangesAtProvider === missFigures.sessions ? 0 : 1;
  } finally {
    await stack?.close();
    await ordersApi?.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench/exchange.ts failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
