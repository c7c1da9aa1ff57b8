/**
 * What a DPoP route (RFC 9449, issue 12) costs per request beside a plain Bearer route:
 *  - the proof itself, in-process: openid-client's handle signing one ES256 proof with
 *    `htu`, `htm`, `ath` and a nonce (what lib/proxy/dpop.ts does per upstream request);
 *  - end to end, through `npm start` (test/helpers/production-stack.ts): one signed-in
 *    session, `GET /api/demo/whoami` (Bearer, the demo API verifying its JWT) against
 *    `GET /api/secure/whoami` (DPoP: the broker signs a proof, the DPoP API verifies the
 *    token, the proof's signature, ath, htu, jti and the nonce), interleaved rounds at the
 *    same connection count. The difference includes the API's own extra checks.
 */
import * as client from 'openid-client';
import { startProductionStack } from '../../test/helpers/production-stack.ts';
import { BrowserClient } from '../../test/helpers/stack.ts';
import { runLoad, type LoadFigures } from './load.ts';
import { BROWSER_API_HEADERS } from './signin.ts';

export interface DPoPCost {
  proofCalls: number;
  microsecondsPerProof: number;
  connections: number;
  seconds: number;
  bearer: LoadFigures;
  dpop: LoadFigures;
  /** DPoP req/s ÷ Bearer req/s. */
  ratio: number;
}

async function proofCost(calls: number): Promise<number> {
  const configuration = new client.Configuration({ issuer: 'https://idp.example' }, 'bench');
  const handle = client.getDPoPHandle(configuration, await client.randomDPoPKeyPair('ES256', { extractable: true })) as unknown as {
    addProof(url: URL, headers: Headers, htm: string, accessToken?: string): Promise<void>;
  };
  const url = new URL('http://127.0.0.1:1/orders/42');
  const token = 'eyJ'.padEnd(800, 'x');
  for (let i = 0; i < 200; i++) await handle.addProof(url, new Headers(), 'GET', token);
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await handle.addProof(url, new Headers(), 'GET', token);
  return Number(process.hrtime.bigint() - start) / calls / 1000;
}

export async function measureDPoPCost(options: { proofCalls: number; connections: number; seconds: number; rounds: number }): Promise<DPoPCost> {
  const microsecondsPerProof = await proofCost(options.proofCalls);
  const stack = await startProductionStack({ npmStart: true, dpopRoute: true, dpopAccessTokenTtl: 3600, idp: { accessTokenTtl: 3600 }, env: { RATE_LIMIT_API: '0', LOG_LEVEL: 'info' } });
  try {
    const browser = new BrowserClient(stack.url);
    await browser.signIn('alice');
    // The first DPoP call learns the API's nonce and gets the bound token.
    for (const path of ['/api/demo/whoami', '/api/secure/whoami']) {
      const answer = await browser.api(path);
      if (answer.status !== 200) throw new Error(`${path} answered ${answer.status}: ${await answer.text()}`);
    }
    const headers = { ...BROWSER_API_HEADERS, cookie: browser.cookieHeader() };
    const run = (path: string) => runLoad({ origin: stack.url, path, headers, connections: options.connections, duration: options.seconds, serverPid: stack.pid });
    const bearer: LoadFigures[] = [];
    const dpop: LoadFigures[] = [];
    await run('/api/secure/whoami');
    for (let i = 0; i < options.rounds; i++) {
      bearer.push(await run('/api/demo/whoami'));
      dpop.push(await run('/api/secure/whoami'));
    }
    const median = (all: LoadFigures[]) => [...all].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)[Math.floor(all.length / 2)] as LoadFigures;
    const [b, d] = [median(bearer), median(dpop)];
    return { proofCalls: options.proofCalls, microsecondsPerProof, connections: options.connections, seconds: options.seconds, bearer: b, dpop: d, ratio: d.requestsPerSecond / b.requestsPerSecond };
  } finally {
    await stack.close();
  }
}

export function dpopReport(cost: DPoPCost): string {
  const line = (f: LoadFigures) => `${f.requestsPerSecond.toFixed(0)} req/s, p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms${f.non2xx ? `, ${f.non2xx} non-2xx` : ''}`;
  return `dpop route      one ES256 proof ${cost.microsecondsPerProof.toFixed(0)} µs (${cost.proofCalls} in-process); ${cost.connections} connections: Bearer ${line(cost.bearer)} · DPoP ${line(cost.dpop)} (${cost.ratio.toFixed(2)} × Bearer, the DPoP API's own proof checks included)`;
}

// `node bench/lib/dpop-cost.ts`: this measurement alone (quick).
if (import.meta.url === `file://${process.argv[1]}`) {
  const cost = await measureDPoPCost({ proofCalls: Number(process.env.PROOF_CALLS ?? 2_000), connections: Number(process.env.CONNECTIONS ?? 10), seconds: Number(process.env.SECONDS ?? 3), rounds: Number(process.env.ROUNDS ?? 1) });
  process.stdout.write(`${dpopReport(cost)}\n`);
  process.exit(0);
}
