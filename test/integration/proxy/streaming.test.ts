/**
 * Bodies stream both ways (CONTRACT.md: "Bodies stream both ways (server-sent events
 * arrive as they are sent)"): a 30 MB upload arrives intact while the broker's memory
 * stays flat, server-sent events reach the browser one by one, and a browser that goes
 * away cancels the upstream request. The harness runs the broker in this process, so
 * `process.memoryUsage()` is the broker's memory (plus the test's own, which is kept
 * small by generating the upload as it is sent, and the upstream's, which hashes as it
 * reads). Streaming is judged three ways: the bytes sent but not yet received upstream,
 * the buffers alive after a collection, and RSS.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { getConfig } from '../../../lib/config/load.ts';
import { handleProxy } from '../../../lib/proxy/handler.ts';
import { getStore } from '../../../lib/stores/index.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream, type UpstreamRecord } from '../../helpers/upstream.ts';

const MB = 1024 * 1024;

// Garbage from chunks already passed on piles up between collections and would read as
// growth; collecting before each sample leaves what is actually held.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

let stack: Stack;
let up: TestUpstream;
let alice: BrowserClient;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/up', upstream: `${up.url}/v1`, auth: 'required' },
        { path: '/api/open', upstream: `${up.url}/o`, auth: 'none' },
      ]),
    },
  });
  alice = stack.newBrowser();
  assert.equal((await alice.signIn('alice')).status, 303);
});

after(async () => {
  await stack?.close();
  await up?.close();
});

interface Upload {
  status: number;
  answer: { size?: number; sha256?: string };
  sentSha256: string;
  /** Peak growth over the upload, sampled every 10 ms after a collection. */
  peakRssGrowth: number;
  peakArrayBufferGrowth: number;
  /** The most bytes sent by the browser and not yet received by the upstream at one time. */
  peakInFlight: number;
}

/**
 * POSTs `size` bytes through the broker, generated chunk by chunk (never held whole),
 * with backpressure, sampling meanwhile. `chunked` leaves out Content-Length.
 * `paceMBps` sends no faster than that, as a browser on a fast link would: at loopback
 * speed (150 MB/s here) the garbage of chunks already passed on outgrows anything the
 * broker could hold between two collections. `measureMemory` collects garbage before
 * each memory sample (a collection takes ~20 ms: the samples are spaced to leave the
 * upload its time).
 */
async function upload(size: number, options: { chunked: boolean; paceMBps?: number; measureMemory?: boolean }): Promise<Upload> {
  const block = randomBytes(64 * 1024);
  const hash = createHash('sha256');
  const headers: Record<string, string> = {
    'x-csrf': '1',
    'sec-fetch-site': 'same-origin',
    cookie: alice.cookieHeader(),
    'content-type': 'application/octet-stream',
  };
  if (!options.chunked) headers['content-length'] = String(size);
  let sent = 0;
  let peakInFlight = 0;
  const received = () => up.records.find((r) => r.url === '/v1/upload')?.bodySize ?? 0;
  if (options.measureMemory) collectGarbage();
  const baseline = process.memoryUsage();
  let peakRss = baseline.rss;
  let peakArrayBuffers = baseline.arrayBuffers;
  let sampling = true;
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    if (!sampling) return;
    peakInFlight = Math.max(peakInFlight, sent - received());
    if (options.measureMemory) {
      collectGarbage();
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers);
    }
    timer = setTimeout(sample, options.measureMemory ? 20 : 5);
  };
  sample();
  try {
    const started = Date.now();
    const req = httpRequest(`${stack.broker.url}/api/up/upload`, { method: 'POST', headers, agent: false });
    const response = once(req, 'response') as Promise<[import('node:http').IncomingMessage]>;
    for (let i = 0; sent < size; i++) {
      // Each chunk differs (its index in the first bytes), so a lost or repeated chunk shows.
      const chunk = Buffer.from(block.subarray(0, Math.min(block.length, size - sent)));
      chunk.writeUInt32BE(i, 0);
      hash.update(chunk);
      sent += chunk.length;
      if (!req.write(chunk)) await once(req, 'drain');
      if (options.paceMBps) {
        const ahead = sent / (options.paceMBps * MB) - (Date.now() - started) / 1000;
        if (ahead > 0.01) await new Promise((resolve) => setTimeout(resolve, ahead * 1000));
      }
    }
    req.end();
    const [res] = await response;
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return {
      status: res.statusCode ?? 0,
      answer: JSON.parse(Buffer.concat(chunks).toString()) as Upload['answer'],
      sentSha256: hash.digest('hex'),
      peakRssGrowth: peakRss - baseline.rss,
      peakArrayBufferGrowth: peakArrayBuffers - baseline.arrayBuffers,
      peakInFlight,
    };
  } finally {
    sampling = false;
    clearTimeout(timer);
  }
}

describe('uploads stream through', () => {
  const shown = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

  async function uploadIntact(t: import('node:test').TestContext, options: Parameters<typeof upload>[1]): Promise<Upload> {
    up.reset();
    const size = 30 * MB;
    const result = await upload(size, options);
    assert.equal(result.status, 200);
    assert.equal(result.answer.size, size, 'the upstream received every byte');
    assert.equal(result.answer.sha256, result.sentSha256, 'the upstream received the same bytes');
    const record = up.records[0] as UpstreamRecord;
    assert.equal(record.bodySize, size);
    assert.ok(record.bearer, 'with the session token');
    if (!options.chunked) assert.equal(record.headers['content-length'], String(size));
    t.diagnostic(
      `in flight at most ${shown(result.peakInFlight)}` +
        (options.measureMemory ? `, RSS +${shown(result.peakRssGrowth)}, live buffers +${shown(result.peakArrayBufferGrowth)}` : ''),
    );
    // A broker that buffered the body would hold all 30 MB before the upstream saw any.
    // What is in flight is socket buffers on two loopback connections.
    assert.ok(result.peakInFlight < 15 * MB, `${shown(result.peakInFlight)} sent but not yet received upstream: the body was held back`);
    return result;
  }

  // First, in a process that has never moved 30 MB: a broker that buffered the body would
  // grow RSS and the buffers alive after a collection by the whole upload.
  test('30 MB with Content-Length at 25 MB/s: intact by SHA-256, never held back, memory flat', async (t) => {
    const result = await uploadIntact(t, { chunked: false, paceMBps: 25, measureMemory: true });
    assert.ok(result.peakArrayBufferGrowth < 12 * MB, `live buffers grew by ${shown(result.peakArrayBufferGrowth)} during a 30 MB upload`);
    assert.ok(result.peakRssGrowth < 20 * MB, `RSS grew by ${shown(result.peakRssGrowth)} during a 30 MB upload`);
  });

  test('30 MB chunked at full speed: intact by SHA-256, never held back', async (t) => {
    await uploadIntact(t, { chunked: true });
  });
});

describe('server-sent events stream through', () => {
  test('each event reaches the browser when it is sent, not when the stream ends', async () => {
    const started = Date.now();
    const response = await alice.api('/api/up/sse?count=3&interval=300');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const arrivals: Array<{ id: number; at: number }> = [];
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) !== -1) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        arrivals.push({ id: Number(/^id: (\d+)$/m.exec(event)?.[1]), at: Date.now() - started });
      }
    }
    assert.deepEqual(
      arrivals.map((a) => a.id),
      [1, 2, 3],
    );
    const [first, second, third] = arrivals.map((a) => a.at) as number[] as [number, number, number];
    // Sent at 0, 300 and 600 ms: buffered, they would all arrive together at the end.
    assert.ok(third - first >= 450, `the first event arrived only ${third - first} ms before the last: the stream was buffered`);
    assert.ok(second - first >= 150, `the second event followed the first after ${second - first} ms`);
  });
});

describe('a browser that goes away cancels the upstream request', () => {
  test('abort while the upstream has not answered (/hang): the upstream sees its request closed within 2 s', async () => {
    up.reset();
    const req = httpRequest(`${stack.broker.url}/api/up/hang`, {
      headers: { 'x-csrf': '1', cookie: alice.cookieHeader() },
      agent: false,
    });
    req.on('error', () => undefined);
    req.end();
    const record = await up.waitFor((r) => r.url === '/v1/hang');
    assert.equal(record.closedAt, undefined, 'still waiting before the browser leaves');
    const left = Date.now();
    req.destroy();
    const closed = await up.waitFor((r) => r === record && r.closedAt !== undefined, 2_000);
    assert.equal(closed.aborted, true);
    assert.ok((closed.closedAt as number) - left < 2_000);
  });

  test('abort in the middle of a server-sent-events stream: the upstream stream is closed', async () => {
    up.reset();
    const req = httpRequest(`${stack.broker.url}/api/up/sse?count=20&interval=200`, {
      headers: { 'x-csrf': '1', cookie: alice.cookieHeader() },
      agent: false,
    });
    req.on('error', () => undefined);
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    assert.equal(res.statusCode, 200);
    await once(res, 'data');
    const left = Date.now();
    req.destroy();
    const record = await up.waitFor((r) => r.url.startsWith('/v1/sse') && r.closedAt !== undefined, 2_000);
    assert.equal(record.aborted, true, 'the upstream stream did not run to its end');
    assert.ok((record.closedAt as number) - left < 2_000);
  });

  test('abort in the middle of an upload: the upstream request is closed, the broker carries on', async () => {
    up.reset();
    const req = httpRequest(`${stack.broker.url}/api/up/upload`, {
      method: 'POST',
      headers: { 'x-csrf': '1', cookie: alice.cookieHeader() },
      agent: false,
    });
    req.on('error', () => undefined);
    const chunk = Buffer.alloc(256 * 1024, 1);
    for (let i = 0; i < 8; i++) if (!req.write(chunk)) await once(req, 'drain');
    const record = await up.waitFor((r) => r.url === '/v1/upload' && r.bodySize > 0);
    req.destroy();
    const closed = await up.waitFor((r) => r === record && r.closedAt !== undefined, 2_000);
    assert.equal(closed.complete, false, 'the upstream never saw the body end');
    assert.equal(closed.aborted, true);
    const next = await alice.api('/api/up/echo');
    assert.equal(next.status, 200, 'the broker still answers');
  });

  test('the response body cancelled mid-stream (what Next.js does when the browser leaves): upstream closed, no uncaught error', async () => {
    // Regression: the upstream body was adapted with Readable.toWeb, which threw
    // ERR_INVALID_STATE as an uncaught exception when cancelled with a chunk in flight.
    for (let round = 0; round < 3; round++) {
      up.reset();
      const request = new Request(`${stack.broker.url}/api/up/sse?count=20&interval=100`, {
        headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', cookie: alice.cookieHeader() },
      });
      const response = await handleProxy(request, getConfig(), getStore());
      assert.equal(response.status, 200);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      await reader.cancel();
      const record = await up.waitFor((r) => r.url.startsWith('/v1/sse') && r.closedAt !== undefined, 2_000);
      assert.equal(record.aborted, true);
    }
    // Cancelled at once, while the first chunks are still arriving.
    for (let round = 0; round < 5; round++) {
      const request = new Request(`${stack.broker.url}/api/open/echo`, { headers: { 'x-csrf': '1' } });
      const response = await handleProxy(request, getConfig(), getStore());
      await response.body?.cancel();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  });
});
