/**
 * Both key rotations (issue 12, items 3 and 4) through the production server (`npm start`)
 * and the real oidc-provider:
 *  - the provider rotates its signing keys mid-session: sign-in, refresh (a new ID token
 *    signed with the new key) and back-channel logout keep working; a flood of logout
 *    tokens with made-up `kid`s costs the provider a bounded number of JWKS fetches
 *    (counted at the provider), and a genuine logout signed with a key published after
 *    the flood is still accepted;
 *  - the broker's own private_key_jwt keys rotate through `/.well-known/jwks.json`, the
 *    provider's client registered with that `jwks_uri`: [A] → [A, B] → [B, A] → [B], each
 *    step a restart, with no failed token request; the key set never shows a private member.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader, exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { CLIENT_ID, startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { postLogoutToken, providerSigningKey, signLogoutToken } from '../helpers/logout-tokens.ts';
import { lastSignIn, watchGrants, type Grant } from '../helpers/sessions.ts';
import { BrowserClient } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The broker's refetch interval for unknown `kid`s (lib/oidc/provider-keys.ts REFETCH_INTERVAL_MS). */
const REFETCH_INTERVAL_MS = 5_000;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

async function signIn(stack: ProductionStack, username = 'alice'): Promise<BrowserClient> {
  const browser = new BrowserClient(stack.url);
  const callback = await browser.signIn(username);
  assert.equal(callback.status, 303, await callback.text());
  return browser;
}

function idTokenKids(stack: ProductionStack, grantType: string): string[] {
  return stack.issued.filter((t) => t.kind === 'id_token' && t.grantType === grantType).map((t) => decodeProtectedHeader(t.value).kid as string);
}

describe('the provider rotates its signing keys mid-session', () => {
  let stack: ProductionStack;
  let echo: TestUpstream;
  let grants: Grant[];
  before(async () => {
    echo = await startUpstream();
    stack = await startProductionStack({
      npmStart: true,
      // Access tokens live 3 s, renewed 1 s before their end.
      idp: { accessTokenTtl: 3 },
      env: { TOKEN_REFRESH_SKEW: '1' },
      extraRoutes: async () => [{ path: '/api/echo', upstream: echo.url, auth: 'required', methods: ['GET'] }],
    });
    grants = watchGrants(stack.idp.provider);
  });
  after(async () => {
    await stack?.close();
    await echo?.close();
  });

  test('sign-in, refresh and back-channel logout keep working; a forged-kid flood costs bounded JWKS fetches', async () => {
    const alice = await signIn(stack, 'alice');
    const aliceSid = lastSignIn(grants).sid as string;
    assert.equal((await alice.api('/api/echo/before')).status, 200);

    const rotated = await stack.idp.rotateSigningKeys();

    // Refresh: the new ID token is signed with the new key, and the broker takes it.
    await sleep(2_200);
    const refreshes = stack.idp.stats.refreshGrants;
    const afterRotation = await alice.api('/api/echo/after');
    assert.equal(afterRotation.status, 200, await afterRotation.text());
    assert.equal(stack.idp.stats.refreshGrants, refreshes + 1, 'the call refreshed');
    assert.equal(idTokenKids(stack, 'refresh_token').at(-1), rotated, 'the refreshed ID token is signed with the new key');

    // Sign-in with the new key.
    const bob = await signIn(stack, 'bob');
    assert.equal(idTokenKids(stack, 'authorization_code').at(-1), rotated);
    const session = await bob.api('/auth/session');
    assert.equal(((await session.json()) as { authenticated: boolean }).authenticated, true);

    // A flood of logout tokens under made-up kids, all at once.
    const fetchesBefore = stack.idp.stats.jwksFetches;
    const forgers = await Promise.all(Array.from({ length: 4 }, () => providerSigningKey()));
    const flood = await Promise.all(
      Array.from({ length: 200 }, (_, i) => signLogoutToken({ ...forgers[i % 4], kid: `forged-${i}` }, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sid: aliceSid })),
    );
    const started = Date.now();
    const statuses = await Promise.all(flood.map((token) => postLogoutToken(stack.url, token)));
    const floodMs = Date.now() - started;
    assert.deepEqual([...new Set(statuses)], [400], 'every forged logout token is refused');
    const floodFetches = stack.idp.stats.jwksFetches - fetchesBefore;
    // One fetch per interval at most, however many tokens: the flood lasted floodMs.
    const bound = Math.ceil(floodMs / REFETCH_INTERVAL_MS) + 1;
    assert.ok(floodFetches >= 1 && floodFetches <= bound, `${floodFetches} JWKS fetches for 200 forged kids in ${floodMs} ms (bound ${bound})`);
    assert.equal((await alice.api('/api/echo/still')).status, 200, 'no forged token ended the session');

    // The provider rotates again right after the flood: the broker fetched its keys moments
    // ago, yet a genuine logout signed with the brand-new key is accepted.
    const newest = await stack.idp.rotateSigningKeys();
    const newestKey = stack.idp.signingKeys().keys[0] as JWK;
    assert.equal(newestKey.kid, newest);
    const genuine = await signLogoutToken(newestKey, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sid: aliceSid });
    const acceptedAt = Date.now();
    assert.equal(await postLogoutToken(stack.url, genuine), 200, 'the genuine logout after the flood is accepted');
    assert.ok(Date.now() - acceptedAt < REFETCH_INTERVAL_MS + 2_000, 'within one refetch interval');
    assert.equal((await alice.api('/api/echo/ended')).status, 401, 'the logged-out session is over');
    assert.equal((await bob.api('/api/echo/bob')).status, 200, 'another user\'s session is untouched');
  });
});

async function clientKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: `${kid}-${(await calculateJwkThumbprint(jwk)).slice(0, 8)}`, alg: 'ES256' };
}

describe("the broker's own private_key_jwt keys rotate through /.well-known/jwks.json", () => {
  let stack: ProductionStack;
  let keyA: JWK;
  let keyB: JWK;
  const assertionKids: string[] = [];
  before(async () => {
    keyA = await clientKey('a');
    keyB = await clientKey('b');
    stack = await startProductionStack({
      npmStart: true,
      idp: { accessTokenTtl: 3 },
      client: (url) => ({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${url}/.well-known/jwks.json` }),
      env: {
        TOKEN_REFRESH_SKEW: '1',
        OIDC_CLIENT_AUTH: 'private_key_jwt',
        OIDC_CLIENT_SECRET: undefined,
        OIDC_CLIENT_PRIVATE_KEY: JSON.stringify({ keys: [keyA] }),
      },
    });
    stack.idp.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const assertion = (ctx.oidc.params as Record<string, unknown> | undefined)?.client_assertion;
      if (typeof assertion === 'string') assertionKids.push(decodeProtectedHeader(assertion).kid as string);
    });
  });
  after(() => stack?.close());

  async function publishedKeys(): Promise<Array<Record<string, unknown>>> {
    const response = await fetch(`${stack.url}/.well-known/jwks.json`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('cache-control') ?? '', /max-age=\d+/);
    const { keys } = (await response.json()) as { keys: Array<Record<string, unknown>> };
    for (const key of keys) for (const member of PRIVATE_MEMBERS) assert.equal(member in key, false, `the published key ${String(key.kid)} carries "${member}"`);
    return keys;
  }

  /** Waits out the access token, then an API call that must refresh: the token request is signed with the current first key. */
  async function refreshedCall(browser: BrowserClient, what: string): Promise<void> {
    await sleep(2_200);
    const refreshes = stack.idp.stats.refreshGrants;
    const response = await browser.api('/api/demo/x');
    assert.equal(response.status, 200, `${what}: ${await response.text()}`);
    assert.equal(stack.idp.stats.refreshGrants, refreshes + 1, `${what}: the call refreshed`);
  }

  /** Stands in for waiting out the provider's cache of our jwks_uri (oidc-provider keeps it at least 60 s). */
  async function providerCacheExpires(): Promise<void> {
    const registered = (await stack.idp.provider.Client.find(CLIENT_ID)) as unknown as { asymmetricKeyStore: { freshUntil?: number } };
    registered.asymmetricKeyStore.freshUntil = 0;
  }

  test('[A] → [A, B] → [B, A] → [B] with no failed token request', async () => {
    assert.deepEqual((await publishedKeys()).map((k) => k.kid), [keyA.kid]);
    const browser = await signIn(stack);
    assert.equal(assertionKids.at(-1), keyA.kid, 'the sign-in was authenticated with key A');

    // 1. Publish B second: A still signs.
    await stack.restartServer({ OIDC_CLIENT_PRIVATE_KEY: JSON.stringify({ keys: [keyA, keyB] }) });
    assert.deepEqual((await publishedKeys()).map((k) => k.kid), [keyA.kid, keyB.kid]);
    await refreshedCall(browser, 'A first, B published');
    assert.equal(assertionKids.at(-1), keyA.kid);

    // 2. Once the provider's cache has expired, move B first: B signs, the provider finds it.
    await providerCacheExpires();
    await stack.restartServer({ OIDC_CLIENT_PRIVATE_KEY: JSON.stringify({ keys: [keyB, keyA] }) });
    await refreshedCall(browser, 'B first');
    assert.equal(assertionKids.at(-1), keyB.kid, 'the refresh was authenticated with key B');

    // 3. Remove A.
    await stack.restartServer({ OIDC_CLIENT_PRIVATE_KEY: JSON.stringify({ keys: [keyB] }) });
    assert.deepEqual((await publishedKeys()).map((k) => k.kid), [keyB.kid]);
    await refreshedCall(browser, 'B alone');
    const fresh = await signIn(stack, 'bob');
    assert.equal(assertionKids.at(-1), keyB.kid);
    assert.equal((await fresh.api('/api/demo/x')).status, 200);

    const requests = stack.idp.stats.tokenRequests;
    assert.ok(requests.length >= 5);
    assert.deepEqual(requests.filter((r) => !r.ok), [], 'no token request failed during the rotation');
    assert.ok(requests.every((r) => r.clientAuth === 'private_key_jwt'));
  });

  test('no private member in the published set, and 404 for a broker without such keys', async () => {
    await publishedKeys();
    const plain = await startProductionStack({ npmStart: true });
    try {
      const response = await fetch(`${plain.url}/.well-known/jwks.json`);
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { error: 'not_found' });
    } finally {
      await plain.close();
    }
  });

  test('no private key in the logs', () => {
    const output = stack.serverStderr() + stack.serverStdout();
    for (const key of [keyA, keyB]) assert.ok(!output.includes(key.d as string), 'a private key is in the server output');
  });
});
