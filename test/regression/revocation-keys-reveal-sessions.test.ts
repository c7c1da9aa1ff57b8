/**
 * AUDIT L8: the revocation entries' keys told a reader of the store who and what they
 * were about: `ended:<raw session id>` (the session id is what logout ends for every
 * copy of a cookie) and `bcl:sub:<sha256(iss \n sub)>`, an unkeyed hash that confirms or
 * enumerates users whose `sub` is an email or a sequential id. Now every revocation key
 * (ended, bcl-sid, bcl-sub, the jti replay mark) is an HMAC under the session secrets,
 * written under every secret's key and checked in one read.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { JWK } from 'jose';
import { getConfig } from '../../lib/config/load.ts';
import { storeKeys } from '../../lib/stores/keys.ts';
import { setStoreForTests } from '../../lib/stores/index.ts';
import { MemoryStore } from '../../lib/stores/memory.ts';
import type { KeyValueStore } from '../../lib/stores/store.ts';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../helpers/stack.ts';
import { sessionOf, unsealSession } from '../helpers/core.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../helpers/logout-tokens.ts';

/** The real memory store, with every key it is asked about recorded. */
class RecordingStore implements KeyValueStore {
  readonly inner = new MemoryStore();
  readonly written: string[] = [];
  readonly reads: string[][] = [];
  get(key: string) {
    this.reads.push([key]);
    return this.inner.get(key);
  }
  getMany(keys: readonly string[]) {
    this.reads.push([...keys]);
    return this.inner.getMany(keys);
  }
  set(key: string, value: string, ttl: number) {
    this.written.push(key);
    return this.inner.set(key, value, ttl);
  }
  setIfAbsent(key: string, value: string, ttl: number) {
    this.written.push(key);
    return this.inner.setIfAbsent(key, value, ttl);
  }
  compareAndSet(key: string, expected: string | undefined, value: string, ttl: number) {
    this.written.push(key);
    return this.inner.compareAndSet(key, expected, value, ttl);
  }
  extendIfEquals(key: string, expected: string, ttl: number) {
    return this.inner.extendIfEquals(key, expected, ttl);
  }
  deleteIfEquals(key: string, expected: string) {
    return this.inner.deleteIfEquals(key, expected);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');
const HMAC_KEY = /^(ended|bcl-sid|bcl-sub|bcl-jti):[A-Za-z0-9_-]{43}$/;

describe('revocation store keys', () => {
  let stack: Stack;
  let providerKey: JWK;
  let store: RecordingStore;
  const oldSecret = randomBytes(32).toString('base64url');

  before(async () => {
    providerKey = await providerSigningKey();
    stack = await startStack({ idp: { jwks: { keys: [providerKey] } } });
    // Mid-rotation: a new secret seals, the old one still unseals.
    stack.configure({ SESSION_SECRETS: `${stack.sessionSecret},${oldSecret}` });
    store = new RecordingStore();
    setStoreForTests(store);
  });
  after(async () => {
    store.inner.close();
    await stack.close();
  });

  async function signedIn(username: string): Promise<BrowserClient> {
    const browser = stack.newBrowser();
    assert.equal((await browser.signIn(username)).status, 303);
    assert.equal((await sessionOf(browser)).authenticated, true);
    return browser;
  }

  const revocationWrites = () => store.written.filter((key) => /^(ended|bcl)/.test(key));

  test('logout and back-channel logouts write only keyed hashes, under every secret', async () => {
    const alice = await signedIn('alice');
    const bob = await signedIn('bob');
    const aliceSession = await unsealSession(alice.cookieHeader());
    const bobSession = await unsealSession(bob.cookieHeader());
    assert.ok(aliceSession && bobSession?.idpSid);

    const logout = await alice.fetch('/auth/logout', { method: 'POST', headers: { origin: alice.origin } });
    assert.equal(logout.status, 303);
    const token = await signLogoutToken(providerKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sid: bobSession.idpSid, sub: bobSession.sub });
    assert.equal(await postLogoutToken(stack.broker.url, token), 200);
    assert.deepEqual(await sessionOf(alice), { authenticated: false });
    assert.deepEqual(await sessionOf(bob), { authenticated: false });

    const config = getConfig();
    const written = revocationWrites();
    assert.ok(written.length > 0);
    for (const key of written) assert.match(key, HMAC_KEY, `${key} is a keyed hash`);
    const jti = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string };
    const identifiers = [aliceSession.id, bobSession.idpSid, bobSession.sub, jti.jti];
    const unkeyed = [...identifiers, `${stack.idp.issuer}\n${bobSession.sub}`, `${stack.idp.issuer}\n${bobSession.idpSid}`].map(sha256);
    for (const key of written) {
      for (const value of [...identifiers, ...unkeyed]) assert.ok(!key.includes(value), `${key} holds no identifier and no unkeyed hash`);
    }
    // Written under both secrets' keys.
    for (const key of storeKeys(config, 'ended', aliceSession.id)) assert.ok(written.includes(key), 'the ended mark under each secret');
    assert.equal(storeKeys(config, 'ended', aliceSession.id).length, 2);
  });

  test('a mark written under either secret\'s key ends the session, and the check is one read', async () => {
    const config = getConfig();
    for (const which of [0, 1]) {
      const carol = await signedIn('carol');
      const session = await unsealSession(carol.cookieHeader());
      assert.ok(session);
      await store.inner.set(storeKeys(config, 'ended', session.id)[which] as string, '1', 60);
      store.reads.length = 0;
      assert.deepEqual(await sessionOf(carol), { authenticated: false }, `a mark under secret ${which + 1}`);
      const checks = store.reads.filter((keys) => keys.some((key) => key.startsWith('ended:')));
      assert.equal(checks.length, 1, 'one getMany for the revocation check');
      assert.equal(checks[0]?.length, 8, 'ended, bcl-sub, bcl-sid and the revoked-before watermark, each under two secrets');
    }
  });
});
