/**
 * A back-channel logout that meets an unreachable store is not lost: the answer is not
 * 200 (the provider knows the delivery failed), and the provider's retry of the same
 * logout token is processed, not refused as a replay of its own jti.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JWK } from 'jose';
import { setStoreForTests } from '../../../lib/stores/index.ts';
import { MemoryStore } from '../../../lib/stores/memory.ts';
import { StoreUnavailableError, type KeyValueStore } from '../../../lib/stores/store.ts';
import { CLIENT_ID, startStack, type Stack } from '../../helpers/stack.ts';
import { sessionOf } from '../../helpers/core.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../../helpers/logout-tokens.ts';

/**
 * The real memory store; while `down`, writes of back-channel logout marks fail as an
 * unreachable Redis would — an outage that begins in the middle of the request, after
 * anything else the request wrote.
 */
class StoreThatGoesDown implements KeyValueStore {
  readonly inner = new MemoryStore();
  down = false;
  private check(key: string): void {
    if (this.down && /^bcl-s(?:id|ub):/.test(key)) throw new StoreUnavailableError();
  }
  get = (key: string) => this.inner.get(key);
  getMany = (keys: readonly string[]) => this.inner.getMany(keys);
  set = async (key: string, value: string, ttl: number) => (this.check(key), this.inner.set(key, value, ttl));
  setIfAbsent = async (key: string, value: string, ttl: number) => (this.check(key), this.inner.setIfAbsent(key, value, ttl));
  compareAndSet = async (key: string, expected: string | undefined, value: string, ttl: number) => (this.check(key), this.inner.compareAndSet(key, expected, value, ttl));
  extendIfEquals = (key: string, expected: string, ttl: number) => this.inner.extendIfEquals(key, expected, ttl);
  deleteIfEquals = (key: string, expected: string) => this.inner.deleteIfEquals(key, expected);
  delete = (key: string) => this.inner.delete(key);
}

describe('back-channel logout and an unreachable store', () => {
  let stack: Stack;
  let providerKey: JWK;
  let store: StoreThatGoesDown;

  before(async () => {
    providerKey = await providerSigningKey();
    stack = await startStack({ idp: { jwks: { keys: [providerKey] } } });
    store = new StoreThatGoesDown();
    setStoreForTests(store);
  });
  after(async () => {
    store.inner.close();
    await stack.close();
  });

  test("the provider's retry of a delivery that failed is processed", async () => {
    const alice = stack.newBrowser();
    assert.equal((await alice.signIn('alice')).status, 303);
    const token = await signLogoutToken(providerKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sub: 'user-alice' });
    store.down = true;
    const failed = await postLogoutToken(stack.broker.url, token);
    store.down = false;
    assert.notEqual(failed, 200, 'the provider is told the delivery failed');
    assert.ok(failed >= 500, `a server-side failure, not a refusal of the token (${failed})`);
    assert.equal(await postLogoutToken(stack.broker.url, token), 200, 'the retry is not a replay');
    assert.deepEqual(await sessionOf(alice), { authenticated: false });
    assert.equal(await postLogoutToken(stack.broker.url, token), 400, 'a third delivery is');
  });
});
