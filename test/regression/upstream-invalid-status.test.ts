/**
 * What broke: an upstream answering a status line a Fetch `Response` cannot carry
 * (`HTTP/1.1 999`) made the broker throw a RangeError and answer 500. It is a broken
 * API: 502 `upstream_unavailable`.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
let upstream: Server;

before(async () => {
  upstream = createServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 999 Odd\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  stack = await startStack({
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/odd', upstream: `http://127.0.0.1:${port}`, auth: 'none' }]) },
  });
});

after(async () => {
  await stack?.close();
  await new Promise((resolve) => upstream.close(resolve));
});

test('a status outside 200–599 from the API is 502 upstream_unavailable, not 500', async () => {
  const answer = await stack.newBrowser().api('/api/odd/x');
  assert.equal(answer.status, 502);
  assert.equal((await answer.json()).error, 'upstream_unavailable');
});
