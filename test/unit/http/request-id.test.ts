/**
 * The request-id rule (lib/http/request-id.ts): a client's `X-Request-Id` is kept only
 * when it is 1–128 characters of [A-Za-z0-9._:-]; anything that could forge a log line
 * or a header, or flood the log, is replaced by a fresh UUID.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWellFormedRequestId, requestIdFrom } from '../../../lib/http/request-id.ts';
import { currentRequestId, runInRequestContext } from '../../../lib/http/request-context.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the request-id rule', () => {
  it('keeps well-formed ids as sent', () => {
    for (const id of ['a', 'req-42', '0af7651916cd43dd8448eb211c80319c', '01HZX3J5N8Q7W2ZK4Y6V9T1B3C', 'edge:region.1_a-b', 'x'.repeat(128), '5f3e1d2c-0a1b-4c2d-9e8f-7a6b5c4d3e2f']) {
      assert.ok(isWellFormedRequestId(id), id);
      assert.equal(requestIdFrom(id), id);
    }
  });

  it('replaces absent, empty, too long and malformed ids with a new UUID, never echoing them', () => {
    const refused: Array<string | string[] | null | undefined> = [
      undefined,
      null,
      '',
      'x'.repeat(129),
      'a b',
      'a,b',
      'a, b',
      'id\r\nX-Injected: 1',
      'id\n{"level":"error","event":"forged"}',
      '"quoted"',
      'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1',
      'é',
      'a/b',
      '<script>',
      ['one', 'two'],
    ];
    const seen = new Set<string>();
    for (const value of refused) {
      assert.equal(isWellFormedRequestId(typeof value === 'string' ? value : undefined), false, JSON.stringify(value));
      const id = requestIdFrom(value);
      assert.match(id, UUID, JSON.stringify(value));
      assert.notEqual(id, value);
      seen.add(id);
    }
    assert.equal(seen.size, refused.length, 'a new id each time');
  });

  it('follows the request through awaits and timers, and not beyond it', async () => {
    assert.equal(currentRequestId(), undefined);
    const inside = await runInRequestContext('req-a', async () => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const nested = await runInRequestContext('req-b', async () => currentRequestId());
      return [currentRequestId(), nested];
    });
    assert.deepEqual(inside, ['req-a', 'req-b']);
    assert.equal(currentRequestId(), undefined);
  });
});
