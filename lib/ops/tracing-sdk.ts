/**
 * Starts the OpenTelemetry SDK for this process — only when the standard environment asks
 * for traces, and only then loading it (dynamic imports): a broker without OTEL_* set
 * pays nothing but @opentelemetry/api's no-op calls (README "Traces", with the measure).
 *
 * Called by instrumentation.ts (`next start`, and Vercel, where the same `register()`
 * runs on each new instance) and by scripts/start.ts (`npm start`, whose front door
 * answers the broker's endpoints outside Next). One SDK per process: the second call
 * finds the first's on globalThis (Next's copy of this module is not the front door's).
 *
 * The OTEL_* variables honoured (the SDK 3 packages read only the exporter's and the
 * resource's themselves; the rest are read here, as the specification names them):
 * - OTEL_SDK_DISABLED=true: off, whatever else is set.
 * - OTEL_TRACES_EXPORTER: `otlp` (default) or `none` (off); anything else is refused at start.
 * - OTEL_EXPORTER_OTLP_ENDPOINT (`…/v1/traces` appended) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 *   (as is): tracing is on when either is set. OTLP over HTTP, JSON encoding.
 * - OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, _TIMEOUT, _COMPRESSION: the exporter's own.
 * - OTEL_SERVICE_NAME (default `cloakroom`), OTEL_RESOURCE_ATTRIBUTES.
 * - OTEL_TRACES_SAMPLER: `parentbased_always_on` (default), `always_on`, `always_off`,
 *   `traceidratio`, `parentbased_traceidratio`, `parentbased_always_off`; OTEL_TRACES_SAMPLER_ARG the ratio.
 * - OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_EXPORT_TIMEOUT.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { log } from '../log.ts';
import { TRACING_ACTIVE } from './tracing.ts';

type Env = Record<string, string | undefined>;

/** Whether the environment asks for traces (see above). */
export function tracingWanted(env: Env = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((name) => name.trim().toLowerCase());
  if (exporters.includes('none')) return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * Attributes that a framework's own spans may carry (Next.js puts the request-target,
 * query included, in `http.target`) and that could hold a code, a token in a query, or
 * a user's address. Removed from every span before it is exported.
 */
export const SCRUBBED_ATTRIBUTES: readonly string[] = ['http.target', 'http.url', 'url.full', 'url.query', 'url.path', 'http.client_ip', 'client.address', 'net.peer.ip', 'net.sock.peer.addr', 'network.peer.address'];

interface Running {
  shutdown(): Promise<void>;
}
const KEY = Symbol.for('cloakroom.tracing');
const holder = globalThis as typeof globalThis & { [KEY]?: Promise<Running | undefined> };

/**
 * A problem with an OTEL_* variable, in words that name the variable and never repeat its
 * value (as for every variable of the broker's: a pasted collector key must not reach the log).
 */
class TracingConfigError extends Error {}

function positiveNumber(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new TracingConfigError(`${name} must be a non-negative number of milliseconds or spans`);
  return value;
}

/** Starts the SDK if wanted; resolves once it is registered (or at once when off). Never throws: a broken tracing setup must not stop the broker. */
export function startTracing(env: Env = process.env): Promise<Running | undefined> {
  if (!tracingWanted(env)) return Promise.resolve(undefined);
  holder[KEY] ??= register(env).catch((error: unknown) => {
    // Only our own messages are logged: an exporter's or SDK's error text may quote a
    // variable's value (OTEL_EXPORTER_OTLP_HEADERS carries collectors' API keys).
    log.error('tracing_not_started', { reason: error instanceof TracingConfigError ? error.message : 'the OpenTelemetry SDK could not be started', errorName: error instanceof Error ? error.name : typeof error });
    return undefined;
  });
  return holder[KEY];
}

/** Flushes the spans still queued and stops exporting (on SIGTERM / SIGINT). */
export async function stopTracing(): Promise<void> {
  const running = await holder[KEY];
  await running?.shutdown().catch(() => undefined);
}

async function register(env: Env): Promise<Running> {
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((name) => name.trim().toLowerCase());
  const unknown = exporters.filter((name) => name !== 'otlp');
  if (unknown.length > 0) throw new TracingConfigError('OTEL_TRACES_EXPORTER: only "otlp" or "none" are supported');
  const [sdk, { OTLPTraceExporter }, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
  ]);

  const ratio = positiveNumber(env, 'OTEL_TRACES_SAMPLER_ARG') ?? 1;
  const samplers: Record<string, () => import('@opentelemetry/sdk-trace').Sampler> = {
    always_on: () => new sdk.AlwaysOnSampler(),
    always_off: () => new sdk.AlwaysOffSampler(),
    traceidratio: () => new sdk.TraceIdRatioBasedSampler(ratio),
    parentbased_always_on: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
    parentbased_always_off: () => new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() }),
    parentbased_traceidratio: () => new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio) }),
  };
  const samplerName = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const sampler = samplers[samplerName];
  if (!sampler) throw new TracingConfigError(`OTEL_TRACES_SAMPLER: one of ${Object.keys(samplers).join(', ')}`);

  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': 'cloakroom' }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));

  const scrubber: import('@opentelemetry/sdk-trace').SpanProcessor = {
    onStart: () => {},
    // Before the span is frozen: its attributes are still the live object.
    onEnding: (span) => {
      const attributes = (span as unknown as { attributes: Record<string, unknown> }).attributes;
      for (const name of SCRUBBED_ATTRIBUTES) delete attributes[name];
    },
    onEnd: () => {},
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const batch = new sdk.BatchSpanProcessor({
    exporter: new OTLPTraceExporter(),
    scheduledDelayMillis: positiveNumber(env, 'OTEL_BSP_SCHEDULE_DELAY'),
    maxExportBatchSize: positiveNumber(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    maxQueueSize: positiveNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
    exportTimeoutMillis: positiveNumber(env, 'OTEL_BSP_EXPORT_TIMEOUT'),
  });
  const provider = new sdk.TracerProvider({ sampler: sampler(), resource, spanProcessors: [scrubber, batch] });

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  (globalThis as { [TRACING_ACTIVE]?: boolean })[TRACING_ACTIVE] = true;
  log.info('tracing_started', { sampler: samplerName, serviceName: resource.attributes['service.name'] as string | undefined });
  return { shutdown: () => provider.shutdown() };
}
