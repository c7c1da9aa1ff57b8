/**
 * The provider key cache's one bounded policy (lib/oidc/provider-keys.ts) against a real
 * HTTP key server whose fetches are counted: a known kid needs no fetch, an unknown kid
 * refetches at most once per interval however many tokens ask, a token signed with a key
 * published within the interval waits for the next allowed fetch instead of being refused,
 * and a failed fetch keeps the previous set.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { providerKeyFetches, providerKeys, REFETCH_INTERVAL_MS, resetProviderKeysForTests } from '../../../lib/oidc/provider-keys.ts';

let server: Server;
let uri: string;
let published: JWK[] = [];
let fetches = 0;
let failing = false;

async function newKey(kid: string): Promise<{ private: JWK; public: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { private: { ...(await exportJWK(privateKey)), kid, alg: 'ES256' }, public: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

async function sign(key: JWK): Promise<string> {
  return new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setIssuedAt().sign(await importJWK(key, 'ES256'));
}

const verify = (token: string) => jwtVerify(token, providerKeys(uri), { algorithms: ['ES256'] });

before(async () => {
  server = createServer((_req, res) => {
    fetches += 1;
    if (failing) return void res.writeHead(503).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  resetProviderKeysForTests();
  fetches = 0;
  failing = false;
});

describe('provider keys: one bounded refetch policy', () => {
  test('a known kid is verified from the cache: one fetch for many tokens', async () => {
    const a = await newKey('a');
    published = [a.public];
    for (let i = 0; i < 20; i++) await verify(await sign(a.private));
    assert.equal(fetches, 1);
    assert.equal(providerKeyFetches(uri), 1);
  });

  test('a flood of unknown kids costs one fetch per interval, and every token is refused', async () => {
    const a = await newKey('a');
    published = [a.public];
    await verify(await sign(a.private));
    const forged = await Promise.all(Array.from({ length: 100 }, async (_, i) => sign({ ...(await newKey(`forged-${i}`)).private })));
    const started = Date.now();
    const results = await Promise.allSettled(forged.map(verify));
    assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'ERR_JWKS_NO_MATCHING_KEY'));
    assert.equal(fetches, 2, 'the first fetch and one refetch for all 100');
    assert.ok(Date.now() - started < REFETCH_INTERVAL_MS + 1_500, 'refused within one interval');
  });

  test('a key published just after a fetch is found by the next allowed fetch, not refused', async () => {
    const a = await newKey('a');
    const b = await newKey('b');
    published = [a.public];
    await verify(await sign(a.private));
    published = [b.public, a.public];
    const started = Date.now();
    const { protectedHeader } = await verify(await sign(b.private));
    assert.equal(protectedHeader.kid, 'b');
    const waited = Date.now() - started;
    assert.ok(waited >= REFETCH_INTERVAL_MS - 200, `waited ${waited} ms for the interval`);
    assert.equal(fetches, 2);
    // Both keys now verify without another fetch.
    await verify(await sign(a.private));
    assert.equal(fetches, 2);
  });

  test('a failed refetch keeps the previous keys', async () => {
    const a = await newKey('a');
    published = [a.public];
    await verify(await sign(a.private));
    failing = true;
    await assert.rejects(verify(await sign((await newKey('c')).private)));
    await verify(await sign(a.private));
  });
});
