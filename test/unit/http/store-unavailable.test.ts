/**
 * `errorResponse` for a store outage: `503 {"error": "store_unavailable"}`, also when a
 * handler wrapped the StoreUnavailableError as the cause of its own error — never the
 * wrapper's code, never a 500, never a body that names the store's internals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerError, ERROR_STATUS } from '../../../lib/errors.ts';
import { errorResponse } from '../../../lib/http/responses.ts';
import { StoreUnavailableError } from '../../../lib/stores/store.ts';

describe('errorResponse and StoreUnavailableError', () => {
  it('maps the error itself, and one wrapped as a cause (even twice), to 503 store_unavailable', async () => {
    const outage = new StoreUnavailableError({ cause: new Error('connect ECONNREFUSED 10.0.0.5:6379 password=hunter2') });
    const cases = [
      outage,
      new BrokerError('idp_unavailable', { cause: outage }),
      new Error('while checking revocation', { cause: new Error('getMany', { cause: outage }) }),
    ];
    for (const error of cases) {
      const response = errorResponse(error);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(response.headers.get('retry-after'), '1');
      assert.deepEqual(await response.json(), { error: 'store_unavailable' });
    }
    assert.equal(ERROR_STATUS.store_unavailable, 503);
  });

  it('keeps the other headers it was given, and adds no cookie of its own', () => {
    const response = errorResponse(new StoreUnavailableError(), [['set-cookie', 'cloakroom-tx.abc=; Max-Age=0; Path=/auth']]);
    assert.deepEqual(response.headers.getSetCookie(), ['cloakroom-tx.abc=; Max-Age=0; Path=/auth']);
    assert.deepEqual(errorResponse(new StoreUnavailableError()).headers.getSetCookie(), []);
  });

  it('an unrelated cause chain is not mistaken for an outage', async () => {
    const response = errorResponse(new BrokerError('idp_unavailable', { cause: new Error('timeout') }));
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { error: 'idp_unavailable' });
  });
});
