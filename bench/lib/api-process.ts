/**
 * The demo API in a process of its own, so that the load generator (in the benchmark's
 * process) and the API do not share one event loop. Reads BENCH_ISSUER and
 * BENCH_AUDIENCE, listens on an ephemeral port and reports it as one JSON line.
 */
import { startDemoApi } from '../../demo/api.ts';

const issuer = process.env.BENCH_ISSUER;
const audience = process.env.BENCH_AUDIENCE;
if (!issuer || !audience) {
  process.stderr.write('api-process needs BENCH_ISSUER and BENCH_AUDIENCE\n');
  process.exit(2);
}

const api = await startDemoApi({ port: 0, issuer, audience, name: 'bench-api' });
process.stdout.write(`${JSON.stringify({ port: api.port })}\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void api.close().finally(() => process.exit(0));
  });
}
