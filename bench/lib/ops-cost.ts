/**
 * What operating the broker costs per request (issue 10, "Benchmark"), measured directly
 * in this process with the broker's own code:
 *  - metrics: the two updates every proxied call makes (lib/proxy/handler.ts: the request
 *    counter and the duration histogram), and one scrape of the registry (`/ops/metrics`);
 *  - stolen-session detection: `checkSessionOrigin` for a request whose network and
 *    browser match the sign-in's (the hot path: memoised look-ups and two string compares,
 *    no store round trip — the store given here throws if it is touched).
 * The rate limits' cost is measured through the running broker instead (bench/run.ts,
 * `rateLimitCost`): default limit against off, same load.
 */
import type { Config } from '../../lib/config/load.ts';
import { metrics } from '../../lib/ops/metrics.ts';
import { checkSessionOrigin, originOf } from '../../lib/security/session-anomaly.ts';
import type { Session } from '../../lib/session/session.ts';
import type { KeyValueStore } from '../../lib/stores/store.ts';

export interface OpsCost {
  calls: number;
  /** proxyRequests.inc + proxyDuration.observe, as one proxied call makes them. */
  metricsNsPerProxyCall: number;
  /** `registry.metrics()`: what one scrape of /ops/metrics costs the process. */
  scrapeMs: number;
  scrapeBytes: number;
  /** checkSessionOrigin with nothing changed, awaited as the pipeline awaits it. */
  anomalyCheckNsUnchanged: number;
}

const untouchable = new Proxy({} as KeyValueStore, {
  get() {
    throw new Error('the anomaly check touched the store on its hot path');
  },
});

function nsPer(calls: number, run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / calls;
}

export async function measureOpsCost(calls: number): Promise<OpsCost> {
  const route = '/api/bench';
  const once = () => {
    metrics.proxyRequests.inc({ route, status: '200' });
    metrics.proxyDuration.observe({ route }, 0.0021);
  };
  nsPer(calls, () => {
    for (let i = 0; i < calls; i++) once();
  });
  const metricsNsPerProxyCall = nsPer(calls, () => {
    for (let i = 0; i < calls; i++) once();
  });

  let scrapeBytes = 0;
  const scrapes = 20;
  await metrics.registry().metrics();
  const scrapeStart = process.hrtime.bigint();
  for (let i = 0; i < scrapes; i++) scrapeBytes = (await metrics.registry().metrics()).length;
  const scrapeMs = Number(process.hrtime.bigint() - scrapeStart) / scrapes / 1e6;

  const config = { trustedProxyHops: 1, anomalyPolicy: 'log', session: { absoluteTimeout: 604_800 } } as unknown as Config;
  const request = new Request('http://127.0.0.1/api/bench/items', {
    headers: {
      'x-forwarded-for': '203.0.113.10, 10.0.0.2',
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36',
    },
  });
  const session = { id: 'bench', createdAt: Date.now(), signedInFrom: originOf(request, config) } as unknown as Session;
  for (let i = 0; i < 1_000; i++) await checkSessionOrigin(request, session, config, untouchable);
  const checkStart = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await checkSessionOrigin(request, session, config, untouchable);
  const anomalyCheckNsUnchanged = Number(process.hrtime.bigint() - checkStart) / calls;

  return { calls, metricsNsPerProxyCall, scrapeMs, scrapeBytes, anomalyCheckNsUnchanged };
}
