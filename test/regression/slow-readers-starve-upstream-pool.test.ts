/**
 * What broke (M8): one pool of 128 connections per upstream origin, no deadline while a
 * request waited for one, undici's body timeout suspended while the browser was not
 * reading, and no timeout towards the browser. 128 event streams, or 128 slow readers,
 * held every connection to an API; every other call to it, from every user and route,
 * queued with no timeout, and the 504 promised by `timeoutMs` never came. A black-holed
 * upstream answered after the fixed 10 s connect timeout, whatever `timeoutMs` said.
 *
 * Now: event streams have their own pool; one deadline (`timeoutMs`) covers queueing,
 * connecting and the answer's headers; and an answer whose next chunk the browser has
 * not taken within `timeoutMs` is cancelled, freeing its upstream connection.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startBlackHole, type BlackHole } from '../helpers/black-hole.ts';
import { holdAnswer, type HeldAnswer } from '../helpers/held-answer.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

/** More than the 128 connections the pool of ordinary answers holds per origin. */
const STREAMS_PER_ROUTE = 65;
const SAME_ORIGIN: Array<[string, string]> = [['X-CSRF', '1'], ['Sec-Fetch-Site', 'same-origin']];
const EVENT_STREAM = '/sse?count=100000&interval=300';

let stack: Stack;
let up: TestUpstream;
let hole: BlackHole;

before(async () => {
  up = await startUpstream();
  hole = await startBlackHole();
  stack = await startStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        // Two routes on one API: neither alone reaches its concurrency cap.
        { path: '/api/live-a', upstream: `${up.url}/a`, auth: 'none', timeoutMs: 5_000 },
        { path: '/api/live-b', upstream: `${up.url}/b`, auth: 'none', timeoutMs: 5_000 },
        { path: '/api/normal', upstream: `${up.url}/n`, auth: 'none', timeoutMs: 1_000 },
        { path: '/api/hole', upstream: hole.url, auth: 'none', timeoutMs: 1_000 },
      ]),
    },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
  await hole?.close();
});

/** Opens `perRoute` held answers on each of the two live routes. */
async function holdMany(path: string, headers: Record<string, string>, perRoute = STREAMS_PER_ROUTE): Promise<HeldAnswer[]> {
  const pending: Array<Promise<HeldAnswer>> = [];
  for (const route of ['/api/live-a', '/api/live-b']) {
    for (let i = 0; i < perRoute; i++) pending.push(holdAnswer(stack.broker.url, `${route}${path}`, headers));
  }
  const settled = await Promise.allSettled(pending);
  const held = settled.filter((s): s is PromiseFulfilledResult<HeldAnswer> => s.status === 'fulfilled').map((s) => s.value);
  const failed = settled.length - held.length;
  if (failed > 0) {
    for (const answer of held) answer.close();
    assert.fail(`${failed} of ${settled.length} streams got no answer: the pool was exhausted`);
  }
  return held;
}

test('130 event streams to one API do not stop a normal call to it from answering', async () => {
  const streams = await holdMany(EVENT_STREAM, { accept: 'text/event-stream' });
  try {
    assert.ok(streams.every((s) => s.status === 200));
    // Another route to the API, and the very route 65 of the streams are on.
    for (const path of ['/api/normal/echo', '/api/live-a/echo']) {
      const answer = await rawRequest(stack.broker.url, { path, headers: SAME_ORIGIN });
      assert.equal(answer.status, 200, `${path}: ${answer.body.toString()}`);
    }
    assert.ok(streams.every((s) => !s.ended), 'the streams are still open');
  } finally {
    for (const stream of streams) stream.close();
  }
});

test('a call that waits for a pooled connection past timeoutMs answers 504 upstream_timeout', async () => {
  // Long ordinary answers (no text/event-stream asked for) hold all 128 connections.
  const held = await holdMany(EVENT_STREAM, {}, 64);
  try {
    const answer = await rawRequest(stack.broker.url, { path: '/api/normal/echo', headers: SAME_ORIGIN, signal: AbortSignal.timeout(15_000) });
    assert.equal(answer.status, 504, answer.body.toString());
    assert.deepEqual(JSON.parse(answer.body.toString()), { error: 'upstream_timeout' });
  } finally {
    for (const answer of held) answer.close();
  }
});

test('a black-holed upstream with timeoutMs 1000 answers 504, not after the 10 s connect timeout', async () => {
  const started = Date.now();
  const answer = await rawRequest(stack.broker.url, { path: '/api/hole/x', headers: SAME_ORIGIN, signal: AbortSignal.timeout(20_000) });
  const took = Date.now() - started;
  assert.equal(answer.status, 504, answer.body.toString());
  assert.deepEqual(JSON.parse(answer.body.toString()), { error: 'upstream_timeout' });
  // The status alone cannot tell the route's deadline from the fixed connect timeout
  // (both are 504): a bound halfway between them can, on however busy a machine.
  assert.ok(took < 5_000, `answered after ${took} ms`);
});

/**
 * The tests below start once an ordinary call to the API answers again. Right after the
 * 128 answers above were cancelled, the next streamed download or upload to the same API
 * sometimes never reached it within its 1 s deadline (504, in about half the runs since
 * issue 10-12's changes; not yet explained — README, Known limits), while an ordinary
 * call answers in milliseconds and the stalls are gone after it.
 */
async function untilNormalCallsAnswer(): Promise<number> {
  const started = Date.now();
  for (;;) {
    const probe = await rawRequest(stack.broker.url, { path: '/api/normal/echo', headers: SAME_ORIGIN, signal: AbortSignal.timeout(15_000) });
    if (probe.status === 200) return Date.now() - started;
    assert.equal(probe.status, 504, probe.body.toString());
    assert.ok(Date.now() - started < 10_000, 'the pool serves again within 10 s');
  }
}

test('a browser that stops reading has its answer cancelled and the upstream connection freed', async () => {
  await untilNormalCallsAnswer();
  up.reset();
  // 64 MiB: far more than the socket buffers between the API and the reader hold.
  const reader = await holdAnswer(stack.broker.url, '/api/normal/stream?kb=65536', {}, { read: false });
  try {
    assert.equal(reader.status, 200);
    const record = await up.waitFor((r) => r.url.startsWith('/n/stream') && r.closedAt !== undefined, 15_000);
    assert.equal(record.aborted, true, 'the broker gave up the upstream answer');
  } finally {
    reader.close();
  }
});

test('an upload that keeps moving for longer than timeoutMs is not cut off by the deadline', async () => {
  await untilNormalCallsAnswer();
  const { request } = await import('node:http');
  const target = new URL(stack.broker.url);
  const chunk = Buffer.alloc(8 * 1024, 0x62);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({
      host: target.hostname,
      port: target.port,
      method: 'POST',
      path: '/api/normal/upload',
      headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', 'content-type': 'application/octet-stream' },
      agent: false,
      signal: AbortSignal.timeout(15_000),
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    // 12 chunks, 250 ms apart: 3 s in all for a 1 s timeoutMs, never idle for 1 s.
    let sent = 0;
    const next = () => {
      if (sent === 12) return void req.end();
      sent += 1;
      req.write(chunk);
      setTimeout(next, 250);
    };
    next();
  });
  assert.equal(answer.status, 200, answer.body);
  assert.equal((JSON.parse(answer.body) as { size: number }).size, 12 * chunk.length);
});
