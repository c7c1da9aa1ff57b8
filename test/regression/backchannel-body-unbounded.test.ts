/**
 * AUDIT H1: `POST /auth/backchannel-logout` is unauthenticated until its token is
 * verified, and Next.js route handlers put no limit on a body; the handler read the
 * whole body with `request.text()`, so a 50 MB POST grew the server by 100–170 MB, and a
 * few in parallel crashed it (wiping a memory store's revocations). Now the body is read
 * up to 16 KiB and refused beyond: a larger Content-Length before a byte is read, a
 * chunked body as soon as it passes the cap.
 *
 * Through the real production server (`next start`); the assertion is on the server's
 * peak resident memory (VmHWM), not on time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { upload } from '../helpers/upload.ts';

const BODY_BYTES = 50 * 1024 * 1024;
/** Far below the body: a server that buffered it would grow by at least its size. */
const ALLOWED_GROWTH = 16 * 1024 * 1024;

function peakResidentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  assert.ok(kb, 'VmHWM in /proc/<pid>/status');
  return Number(kb[1]) * 1024;
}

describe('a 50 MB back-channel logout body', () => {
  let stack: ProductionStack;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };

  before(async () => {
    stack = await startProductionStack();
    // Load the route and its modules first, so that only the upload can move the peak.
    for (let i = 0; i < 3; i++) {
      const warm = await upload(stack.url, { path: '/auth/backchannel-logout', bytes: 8 * 1024, chunked: i % 2 === 0, headers: form });
      assert.equal(warm.status, 400);
    }
  });
  after(() => stack?.close());

  for (const chunked of [true, false]) {
    test(`${chunked ? 'chunked' : 'with Content-Length'}: 400 invalid_request, and the server does not hold it`, async () => {
      const peakBefore = peakResidentBytes(stack.pid);
      const outcome = await upload(stack.url, { path: '/auth/backchannel-logout', bytes: BODY_BYTES, chunked, headers: form });
      // The server answers 400 and closes the connection without reading the rest. A client
      // that is still sending then may see the connection reset before it reads the answer
      // (the unread bytes make the server's TCP stack send RST; RFC 9112 §9.6): either way
      // the server stopped reading long before the end of the body.
      assert.ok(outcome.status === 400 || outcome.status === 0, `answered ${outcome.status} after ${outcome.sent} bytes`);
      if (outcome.status === 400) assert.equal((JSON.parse(outcome.body) as { error: string }).error, 'invalid_request');
      const growth = peakResidentBytes(stack.pid) - peakBefore;
      assert.ok(growth < ALLOWED_GROWTH, `the server's peak memory grew by ${(growth / 1048576).toFixed(1)} MiB for a ${BODY_BYTES / 1048576} MiB body`);
      assert.ok(outcome.sent < BODY_BYTES, `refused before the whole body was sent (${outcome.sent} of ${BODY_BYTES} bytes)`);
    });
  }

  test('a client that waits for the answer reads 400 invalid_request, for either framing', async () => {
    for (const chunked of [true, false]) {
      // A client that sends past the cap (64 KiB of a declared 50 MiB, or of an open-ended
      // chunked body) and then waits for the answer.
      const outcome = await upload(stack.url, { path: '/auth/backchannel-logout', bytes: BODY_BYTES, chunked, headers: form, pauseAfter: 64 * 1024 });
      assert.equal(outcome.status, 400, `${chunked ? 'chunked' : 'Content-Length'}: ${outcome.status} after ${outcome.sent}`);
      assert.deepEqual(JSON.parse(outcome.body), { error: 'invalid_request', message: 'the body exceeds 16384 bytes' });
    }
  });

  test('a body just under the cap is still read (and its missing token refused as such)', async () => {
    const response = await fetch(`${stack.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: form,
      body: `logout_token=&pad=${'x'.repeat(15 * 1024)}`,
    });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), { error: 'invalid_request', message: 'logout_token is missing' });
  });
});
