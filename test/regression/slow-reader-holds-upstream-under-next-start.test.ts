/**
 * What broke (M8), through the production server: `next start` has no timeout while the
 * browser is not reading (Node's `server.timeout` is 0), and undici's body timeout does
 * not run while backpressure pauses the upstream socket. A browser that took the
 * headers of a large answer and then stopped reading held its upstream connection
 * forever. Now the answer is cancelled once the browser has not taken the next chunk
 * within the route's `timeoutMs`, and the upstream connection is freed; a browser that
 * reads gets the whole answer.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { holdAnswer } from '../helpers/held-answer.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

let stack: ProductionStack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startProductionStack({
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/files', upstream: `${up.url}/files`, auth: 'none', timeoutMs: 1_000 }]) },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('a browser that stops reading has its answer cancelled and the upstream connection freed', async () => {
  up.reset();
  // 64 MiB: far more than the socket buffers between the API and the reader hold.
  const reader = await holdAnswer(stack.url, '/api/files/stream?kb=65536', {}, { read: false });
  try {
    assert.equal(reader.status, 200);
    const record = await up.waitFor((r) => r.url.startsWith('/files/stream') && r.closedAt !== undefined, 15_000);
    assert.equal(record.aborted, true, 'the broker gave up the upstream answer');
  } finally {
    reader.close();
  }
});

test('a browser that reads gets the whole answer', async () => {
  const reader = await holdAnswer(stack.url, '/api/files/stream?kb=4096', {});
  const deadline = Date.now() + 15_000;
  while (!reader.ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(reader.received, 4096 * 1024);
});
