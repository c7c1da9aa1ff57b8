/**
 * When traces are on (lib/ops/tracing-sdk.ts): only when an OTLP endpoint is configured,
 * and never with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Off, the API's calls
 * are no-ops: no span context, nothing injected.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tracingWanted } from '../../../lib/ops/tracing-sdk.ts';
import { startUpstreamSpan, traceRequest } from '../../../lib/ops/tracing.ts';

describe('tracingWanted', () => {
  it('is off without an endpoint, on with either endpoint variable', () => {
    assert.equal(tracingWanted({}), false);
    assert.equal(tracingWanted({ OTEL_SERVICE_NAME: 'x' }), false);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }), false);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
  });

  it('honours OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none', () => {
    const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    assert.equal(tracingWanted({ ...on, OTEL_SDK_DISABLED: 'true' }), false);
    assert.equal(tracingWanted({ ...on, OTEL_SDK_DISABLED: 'TRUE' }), false);
    assert.equal(tracingWanted({ ...on, OTEL_SDK_DISABLED: 'false' }), true);
    assert.equal(tracingWanted({ ...on, OTEL_TRACES_EXPORTER: 'none' }), false);
    assert.equal(tracingWanted({ ...on, OTEL_TRACES_EXPORTER: 'otlp' }), true);
  });
});

describe('with no SDK registered', () => {
  it('a request span is a no-op and the upstream request gets no trace header', async () => {
    const response = await traceRequest('GET', '/api', new Headers({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }), async () => new Response('ok'));
    assert.equal(response.status, 200);
    const span = startUpstreamSpan('GET', '/api/demo', 'http://api.internal:8080');
    const headers: Record<string, string> = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    span.inject(headers);
    span.end();
    // The browser's header is left as the allow-list passes it; nothing of the broker's is added.
    assert.deepEqual(headers, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  });
});
