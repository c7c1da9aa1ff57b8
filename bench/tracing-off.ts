/**
 * `node bench/tracing-off.ts`: what the request scope (lib/http/request-scope.ts) costs
 * each broker request when OTEL_* is unset, in-process, against the bare handler: the
 * request id, the AsyncLocalStorage context, @opentelemetry/api's no-op span and the
 * `X-Request-Id` header. Then the same with the SDK registered, to show what turning
 * traces on costs (an always-on sampler; a processor that drops the spans, so no network
 * is measured). Prints nanoseconds per request; asserts nothing.
 */
import { performance } from 'node:perf_hooks';
import { inRequestScope } from '../lib/http/request-scope.ts';
import { TRACING_ACTIVE } from '../lib/ops/tracing.ts';

const ROUNDS = 5;
const PER_ROUND = 100_000;
const request = new Request('http://localhost/api/demo/x', { headers: { 'x-request-id': 'bench-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
const bare = async () => new Response(null, { status: 204 });

async function nsPerCall(run: () => Promise<Response>): Promise<number> {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const started = performance.now();
    for (let i = 0; i < PER_ROUND; i++) await run();
    rounds.push(((performance.now() - started) * 1e6) / PER_ROUND);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(ROUNDS / 2)] as number;
}

async function measure(label: string): Promise<void> {
  const direct = await nsPerCall(bare);
  const scoped = await nsPerCall(() => inRequestScope('/api', bare, request));
  process.stdout.write(`${label}: bare handler ${direct.toFixed(0)} ns, in the request scope ${scoped.toFixed(0)} ns, cost ${(scoped - direct).toFixed(0)} ns per request\n`);
}

await measure('OTEL unset');
const sdk = await import('@opentelemetry/sdk-trace');
const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
const { context, trace } = await import('@opentelemetry/api');
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
// Spans recorded and ended, then dropped: the SDK's own cost, without any network.
trace.setGlobalTracerProvider(new sdk.TracerProvider({ sampler: new sdk.AlwaysOnSampler(), spanProcessors: [new sdk.NoopSpanProcessor()] }));
(globalThis as { [TRACING_ACTIVE]?: boolean })[TRACING_ACTIVE] = true;
await measure('SDK on (recording, export dropped)');
