import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError } from '../../../lib/errors.ts';
import { admitExchange, exchangesInFlight } from '../../../lib/proxy/concurrency.ts';
import { parseRouteTable, type Route } from '../../../lib/proxy/route-table.ts';

function route(fields: Record<string, unknown>): Route {
  const table = parseRouteTable([{ path: '/api/x', upstream: 'https://x.internal', ...fields }]);
  assert.ok(table.ok);
  return table.routes[0] as Route;
}

function refused(admit: () => unknown): BrokerError {
  try {
    admit();
  } catch (error) {
    assert.ok(error instanceof BrokerError);
    return error;
  }
  return assert.fail('expected 429');
}

describe('admitExchange', () => {
  it('admits up to maxConcurrent, then answers 429 rate_limited with Retry-After', () => {
    const r = route({ maxConcurrent: 2 });
    const releases = [admitExchange(r, undefined), admitExchange(r, 's1')];
    const error = refused(() => admitExchange(r, 's2'));
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.status, 429);
    assert.deepEqual(error.headers, [['retry-after', '1']]);
    releases[0]?.();
    admitExchange(r, 's2')();
    assert.equal(exchangesInFlight(r), 1);
  });

  it('caps one session without touching another', () => {
    const r = route({ maxConcurrentPerSession: 2 });
    admitExchange(r, 'alice');
    const second = admitExchange(r, 'alice');
    assert.equal(refused(() => admitExchange(r, 'alice')).code, 'rate_limited');
    admitExchange(r, 'bob');
    second();
    admitExchange(r, 'alice');
  });

  it('a release counts once, however often it is called', () => {
    const r = route({ maxConcurrent: 1 });
    const release = admitExchange(r, 'a');
    release();
    release();
    assert.equal(exchangesInFlight(r), 0);
    admitExchange(r, 'a');
    assert.equal(refused(() => admitExchange(r, 'b')).code, 'rate_limited');
  });

  it('counts per route object: a reloaded table starts afresh', () => {
    const a = route({ maxConcurrent: 1 });
    const b = route({ maxConcurrent: 1 });
    admitExchange(a, undefined);
    admitExchange(b, undefined);
    assert.equal(exchangesInFlight(a), 1);
    assert.equal(exchangesInFlight(b), 1);
  });

  it('the per-session cap never exceeds the route cap', () => {
    assert.equal(route({ maxConcurrent: 3, maxConcurrentPerSession: 10 }).maxConcurrentPerSession, 3);
  });
});
