/**
 * The Redis phases of `npm run bench` and their lines, targets and failures: kept apart
 * from run.ts so that the main script only calls in (bench/lib/redis-store.ts measures).
 */
import { progress } from './processes.ts';
import type { Target } from './report.ts';
import { redisRatios, redisStoreThroughput, twoInstanceStorm, type RedisStoreFigures, type TwoInstanceStormFigures } from './redis-store.ts';

export interface RedisPhases {
  figures: RedisStoreFigures & { ratios: ReturnType<typeof redisRatios>; twoInstanceStorm: TwoInstanceStormFigures };
  targets: Target[];
  failures: string[];
}

export async function redisPhases(options: {
  stack: { brokerEnv: Record<string, string>; brokerPort: number; brokerOrigin: string };
  plan: { sessions: number; connections: number[]; seconds: number; warmupSeconds: number; stormParallel: number; stormTtl: number };
  users: Array<{ username: string; password: string }>;
  signInParallel: number;
}): Promise<RedisPhases> {
  const { stack, plan } = options;
  progress(`redis store: memory vs Redis, cookie and server sessions, 1 and ${plan.sessions} sessions, ${plan.seconds} s per run`);
  const store = await redisStoreThroughput({
    brokerEnv: stack.brokerEnv,
    brokerPort: stack.brokerPort,
    brokerOrigin: stack.brokerOrigin,
    sessions: plan.sessions,
    connections: plan.connections,
    seconds: plan.seconds,
    warmupSeconds: plan.warmupSeconds,
    users: options.users,
    signInParallel: options.signInParallel,
  });
  progress(`two-instance storm: ${plan.stormParallel} parallel requests split over two brokers sharing Redis`);
  const storm = await twoInstanceStorm({ parallel: plan.stormParallel, accessTokenTtl: plan.stormTtl });
  progress(`  ${storm.refreshGrants} refresh grant(s), ${storm.succeeded}/${storm.parallel} succeeded, follow-up ${storm.followUpOk ? 'ok' : 'FAILED'}`);
  const ratios = redisRatios(store.rows);
  const worst = ratios.reduce((min, r) => Math.min(min, r.ratio), Number.POSITIVE_INFINITY);
  const targets: Target[] = [
    {
      name: 'Redis store costs at most 10 % of throughput (÷ memory store ≥ 0.9, every row)',
      met: ratios.length > 0 && worst >= 0.9,
      figure: ratios.map((r) => `${r.storage}/${r.sessions}s/${r.connections}c ${r.ratio.toFixed(2)}`).join(', '),
    },
    {
      name: `two-instance refresh storm: exactly one grant and ${storm.parallel} successes`,
      met: storm.refreshGrants === 1 && storm.succeeded === storm.parallel,
      figure: `${storm.refreshGrants} grant(s), ${storm.succeeded}/${storm.parallel} succeeded`,
    },
  ];
  const failures: string[] = [];
  for (const r of store.rows) if (r.failed > 0) failures.push(`redis store run (${r.store}/${r.storage}, ${r.sessions} sessions, ${r.connections} conn): ${r.failed} failed requests ${JSON.stringify(r.statusCodes)}`);
  for (const r of store.revocationReads) if (r.failed > 0) failures.push(`revocation reads run (${r.storage}, ${r.sessions} sessions): ${r.failed} failed requests ${JSON.stringify(r.statusCodes)}`);
  if (storm.succeeded === 0) failures.push('two-instance storm: no request succeeded');
  return { figures: { ...store, ratios, twoInstanceStorm: storm }, targets, failures };
}

export function redisReport(phases: RedisPhases): string[] {
  const { rows, revocationReads, ratios, twoInstanceStorm: storm } = phases.figures;
  const out: string[] = [];
  for (const r of rows.filter((row) => row.store === 'redis')) {
    const ratio = ratios.find((x) => x.storage === r.storage && x.sessions === r.sessions && x.connections === r.connections)?.ratio;
    const memory = rows.find((m) => m.store === 'memory' && m.storage === r.storage && m.sessions === r.sessions && m.connections === r.connections);
    out.push(
      `redis store     ${r.storage} sessions, ${r.sessions} session(s), ${r.connections} conn: ${Math.round(r.requestsPerSecond)} req/s (memory ${Math.round(memory?.requestsPerSecond ?? 0)}), ÷ memory ${ratio?.toFixed(2) ?? '?'}, p99 ${r.p99Ms} ms (memory ${memory?.p99Ms ?? '?'})`,
    );
  }
  for (const r of revocationReads) out.push(`revocation      ${r.storage} sessions, ${r.sessions} session(s): ${r.readsPerThousandCalls.toFixed(0)} Redis reads per 1,000 API calls (${r.redisReads} for ${r.apiCalls}; uncached: one MGET per call; a cold session costs one pipelined round trip of one GET per key)`);
  out.push(`storm × 2       ${storm.parallel} parallel requests over two brokers sharing Redis, expired ${storm.accessTokenTtlSeconds} s token: ${storm.refreshGrants} refresh grant(s), ${storm.succeeded}/${storm.parallel} succeeded ${JSON.stringify(storm.statusCodes)}, grants revoked ${storm.grantsRevoked}, follow-up ${storm.followUpOk ? 'ok' : 'FAILED'}`);
  return out;
}
