/**
 * AUDIT M1: proxy.ts's matcher selected every /api path holding a `%`, and Next.js makes
 * a selected request wait for and copy its whole body (twice) before the route runs,
 * cutting it at 10 MB: a 30 MB upload to a path holding `%20` reached the API as 0 bytes
 * (502) with a Content-Length, or as exactly 10,485,760 bytes when chunked. Now the
 * matcher selects only undecodable paths (which are refused) and
 * `experimental.proxyClientMaxBodySize` keeps what Next copies for those to 1 byte.
 *
 * Through the real production server (`next start`), to a real upstream that hashes
 * what it receives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { upload } from '../helpers/upload.ts';

const BODY_BYTES = 30 * 1024 * 1024;
const API_HEADERS = { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', 'content-type': 'application/octet-stream' };

describe('a 30 MB upload to a path holding percent-escapes', () => {
  let stack: ProductionStack;
  let up: TestUpstream;

  before(async () => {
    up = await startUpstream();
    stack = await startProductionStack({
      env: { BFF_ROUTES: JSON.stringify([{ path: '/api/files', upstream: `${up.url}/v1/upload`, auth: 'none', methods: ['POST', 'PUT'] }]) },
    });
  });
  after(async () => {
    await stack?.close();
    await up?.close();
  });

  // `%20`: what the audit tried; `%C3%A9`: a non-ASCII name, as a browser encodes `café`.
  for (const name of ['report%202024.bin', 'caf%C3%A9.bin']) {
    for (const chunked of [true, false]) {
      test(`/api/files/${name}, ${chunked ? 'chunked' : 'with Content-Length'}: reaches the API byte-exact`, async () => {
        up.reset();
        const outcome = await upload(stack.url, { method: 'PUT', path: `/api/files/${name}`, bytes: BODY_BYTES, chunked, headers: API_HEADERS });
        assert.equal(outcome.status, 200, `answered ${outcome.status}: ${outcome.body.slice(0, 200)}`);
        assert.equal(up.records.length, 1);
        const record = up.records[0];
        assert.equal(record?.url, `/v1/upload/${name}`, 'the path reached the API as sent');
        assert.equal(record?.bodySize, BODY_BYTES);
        assert.equal(record?.bodySha256, outcome.sha256, 'the same bytes');
        assert.deepEqual(JSON.parse(outcome.body), { size: BODY_BYTES, sha256: outcome.sha256 });
      });
    }
  }

  test('an undecodable path is still 400 invalid_request, its body never forwarded', async () => {
    up.reset();
    for (const chunked of [true, false]) {
      const outcome = await upload(stack.url, { method: 'PUT', path: '/api/files/%FF.bin', bytes: 1024 * 1024, chunked, headers: API_HEADERS });
      assert.equal(outcome.status, 400);
      assert.equal((JSON.parse(outcome.body) as { error: string }).error, 'invalid_request');
    }
    assert.equal(up.records.length, 0);
  });
});
