/**
 * What broke (M2, scenario B, the handler's part): the session cookie is computed after
 * the API has answered, and when that failed — the store unreachable, a seal refused —
 * the exception replaced the API's answer with a 500 `server_error`, although the API
 * had already acted on the call (an order placed), and the upstream body nobody would
 * read kept its pooled connection busy. The answer is now delivered, and the browser
 * keeps its cookie: the refresh this request made is adopted by the next one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { StoreUnavailableError, type KeyValueStore } from '../../lib/stores/store.ts';
import { setStoreForTests } from '../../lib/stores/index.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const ORDERS = 'https://orders.example/';

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: { resources: { [ORDERS]: { scope: 'orders:write' } } },
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/orders', upstream: up.url, resource: ORDERS, scopes: ['orders:write'] }]) },
  });
});

after(async () => {
  await stack?.close();
  await up?.close();
});

/** The stack's own store, which starts failing every call when `failing` is set. */
function failingWhen(store: KeyValueStore, failing: () => boolean): KeyValueStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (failing()) return Promise.reject(new StoreUnavailableError());
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

test('the store failing after the API answered: the answer is delivered, never a 500', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  let failing = false;
  setStoreForTests(failingWhen(stack.store, () => failing));
  try {
    up.reset();
    // The first call for the orders resource obtains its token: the answer must write a cookie.
    const call = browser.api('/api/orders/slow?ms=300', { method: 'POST', body: '{}' });
    await up.waitFor((record) => record.url.startsWith('/slow'));
    failing = true;
    const answer = await call;
    assert.equal(answer.status, 200, await answer.clone().text());
    assert.deepEqual(await answer.json(), { slept: 300 });
  } finally {
    failing = false;
    setStoreForTests(stack.store);
  }
  // The session lives on: the token obtained meanwhile is adopted by the next call.
  const next = await browser.api('/api/orders/echo');
  assert.equal(next.status, 200);
});
