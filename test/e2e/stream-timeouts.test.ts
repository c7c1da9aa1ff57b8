/**
 * Streams end at their session's idle and absolute timeouts (CONTRACT.md, "Streams end
 * with their session"), through the real `npm start` server: a WebSocket (code 4401) and
 * an SSE stream opened on a session are closed within a second of its deadline.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { WebSocket } from 'ws';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';

const stacks: ProductionStack[] = [];
after(async () => {
  for (const stack of stacks) await stack.close();
});

async function closedAtDeadline(env: Record<string, string>, deadlineSeconds: number, activeAfterMs = 0): Promise<void> {
  const stack = await startProductionStack({ npmStart: true, liveRoute: true, env });
  stacks.push(stack);
  const browser = new BrowserClient(stack.url);
  const signedInAt = Date.now();
  await browser.signIn('alice');
  if (activeAfterMs > 0) {
    // Activity: the cookie's idle deadline moves past the absolute one.
    await new Promise((resolve) => setTimeout(resolve, activeAfterMs));
    const call = await browser.api('/api/demo/me');
    assert.equal(call.status, 200);
    await call.body?.cancel();
  }
  const ws = new WebSocket(`${stack.url.replace(/^http/, 'ws')}/api/live/ws`, { headers: { origin: stack.url, cookie: browser.cookieHeader() } });
  const closed = new Promise<{ code: number; at: number }>((resolve) => ws.once('close', (code) => resolve({ code, at: Date.now() })));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const response = await browser.api('/api/demo/events?forever', { headers: { accept: 'text/event-stream' } });
  assert.equal(response.status, 200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const ended = (async () => {
    for (;;) if ((await reader.read()).done) return Date.now();
  })();
  const deadline = signedInAt + deadlineSeconds * 1000;
  const socket = await closed;
  assert.equal(socket.code, 4401);
  // The session was created a little after signedInAt: never before the deadline, within a second after.
  assert.ok(socket.at >= deadline && socket.at - deadline < 1_500, `the socket closed ${socket.at - deadline} ms after the deadline`);
  const streamEnd = await ended;
  assert.ok(streamEnd >= deadline && streamEnd - deadline < 1_500, `the stream ended ${streamEnd - deadline} ms after the deadline`);
}

test('the idle timeout closes a socket and an SSE stream within a second', { timeout: 60_000 }, async () => {
  await closedAtDeadline({ SESSION_IDLE_TIMEOUT: '4', SESSION_ABSOLUTE_TIMEOUT: '600' }, 4);
});

test('the absolute timeout closes a socket and an SSE stream within a second', { timeout: 60_000 }, async () => {
  // Idle 4 s, absolute 6 s; used at 2.5 s, so the streams' idle deadline is 6.5 s.
  await closedAtDeadline({ SESSION_IDLE_TIMEOUT: '4', SESSION_ABSOLUTE_TIMEOUT: '6' }, 6, 2_500);
});
