/**
 * DPoP per route (RFC 9449, issue 12) through the production server (`npm start`), with
 * the real oidc-provider (DPoP on, nonces required at its token endpoint) and a real API
 * (demo/dpop-api.ts) that verifies every proof with jose and demands its own nonce.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { after, before, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, exportJWK, importJWK, SignJWT } from 'jose';
import { DPOP_RETRY_BUFFER_BYTES } from '../../lib/proxy/dpop.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';
import type { DPoPApi } from '../../demo/dpop-api.ts';
import type { KoaContextWithOIDC } from 'oidc-provider';

let stack: ProductionStack;
let api: DPoPApi;
let browser: BrowserClient;
const pushedJkts: string[] = [];
const codeGrantTokenTypes: string[] = [];

before(async () => {
  stack = await startProductionStack({ npmStart: true, dpopRoute: true });
  api = stack.dpopApi as DPoPApi;
  // What the provider saw of the sign-in: the pushed request's dpop_jkt, the code grant's token type.
  stack.idp.provider.on('pushed_authorization_request.success', (ctx: KoaContextWithOIDC) => {
    pushedJkts.push(String(ctx.oidc.params?.dpop_jkt ?? ''));
  });
  stack.idp.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc.params?.grant_type === 'authorization_code') codeGrantTokenTypes.push(String((ctx.body as { token_type?: string }).token_type));
  });
  browser = new BrowserClient(stack.url);
  await browser.signIn('alice');
});
after(async () => {
  await stack?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** The DPoP-bound access tokens the provider issued (refresh grants for the DPoP API's resource). */
function boundTokens(): string[] {
  return stack.issued
    .filter((t) => t.kind === 'access_token')
    .map((t) => t.value)
    .filter((value) => {
      try {
        return (decodeJwt(value).cnf as { jkt?: string } | undefined)?.jkt !== undefined;
      } catch {
        return false;
      }
    });
}

test('a DPoP route: the token is bound to the session key (cnf.jkt), the proof carries the upstream URL, both nonces are handled', async () => {
  const before = api.seen.length;
  const response = await browser.api('/api/secure/whoami?x=1');
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.dpopBound, true);
  assert.equal(body.sub, 'user-alice');
  assert.equal(body.tokenJkt, body.proofJkt, 'the proof is made with the key the token is bound to');
  // htu is the API's own URL, never the broker's (and without the query).
  assert.equal(body.htu, `${api.url}/whoami`);
  assert.equal(body.query, '?x=1');
  const tokens = boundTokens();
  assert.equal(tokens.length, 1, 'one DPoP-bound JWT issued (the sign-in\'s own token is opaque)');
  assert.equal((decodeJwt(tokens[0]).cnf as { jkt: string }).jkt, body.tokenJkt);
  // The API's nonce: the first proof had none, the one retry carried it.
  const attempts = api.seen.slice(before);
  assert.deepEqual(attempts.map((s) => s.outcome), ['nonce missing or stale', 'accepted']);
  // The provider's nonce (requireNonce): its token endpoint answered use_dpop_nonce to the
  // code exchange's first proof; the handle kept the nonce for the session, so the refresh
  // that bound the API's token needed no second round trip.
  const grants = stack.idp.stats.tokenRequests;
  assert.deepEqual(
    grants.map((r) => `${r.grant_type} ${r.ok ? 'ok' : r.error}`),
    ['authorization_code use_dpop_nonce', 'authorization_code ok', 'refresh_token ok'],
  );
  // RFC 9449 §10: the authorization request named the session key (dpop_jkt), and the code
  // exchange proved it, so the sign-in's own token is bound to it too.
  assert.deepEqual(pushedJkts, [body.tokenJkt]);
  assert.deepEqual(codeGrantTokenTypes, ['DPoP']);
  // The next call knows the nonce: no retry.
  const again = api.seen.length;
  assert.equal((await browser.api('/api/secure/whoami')).status, 200);
  assert.deepEqual(api.seen.slice(again).map((s) => s.outcome), ['accepted']);
});

test('a non-DPoP route on the same session is unaffected: a Bearer token without cnf', async () => {
  const response = await browser.api('/api/demo/whoami');
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  const bearer = stack.issued.filter((t) => t.kind === 'access_token').map((t) => decodeJwtOrUndefined(t.value)).filter((c) => c?.aud === stack.demoAudience);
  assert.ok(bearer.length > 0);
  for (const claims of bearer) assert.equal(claims?.cnf, undefined, 'the demo API gets a plain Bearer token');
});

function decodeJwtOrUndefined(value: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(value);
  } catch {
    return undefined;
  }
}

test('a token copied out of the upstream request is refused without the key: as Bearer, as DPoP without a proof, with a proof of another key', async () => {
  const token = boundTokens().at(-1) as string;
  const url = `${api.url}/whoami`;
  const bearer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(bearer.status, 401);
  const noProof = await fetch(url, { headers: { authorization: `DPoP ${token}` } });
  assert.equal(noProof.status, 401);
  // The thief's own key, a perfect proof otherwise (htu, htm, ath, fresh jti, the API's nonce).
  const nonceAnswer = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await forgedProof(url, token, undefined) } });
  const nonce = nonceAnswer.headers.get('dpop-nonce') ?? undefined;
  const forged = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await forgedProof(url, token, nonce) } });
  assert.equal(forged.status, 401);
  assert.equal(((await forged.json()) as { reason: string }).reason, "proof key is not the token's key (cnf.jkt)");
});

async function forgedProof(htu: string, token: string, nonce: string | undefined): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = await exportJWK(publicKey);
  return new SignJWT({ htm: 'GET', htu, ath: createHash('sha256').update(token).digest('base64url'), jti: crypto.randomUUID(), ...(nonce ? { nonce } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
    .setIssuedAt()
    .sign(privateKey);
}

test('the nonce retry with a JSON POST body: the API receives it once, complete', async () => {
  api.rotateNonce();
  const payload = JSON.stringify({ order: 42, items: Array.from({ length: 200 }, (_, i) => ({ i, note: 'ünïcode ✓' })) });
  const before = api.seen.length;
  const response = await browser.api('/api/secure/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.bodyBytes, Buffer.byteLength(payload));
  assert.equal(body.bodySha256, sha256(payload));
  const attempts = api.seen.slice(before);
  assert.deepEqual(attempts.map((s) => s.outcome), ['nonce missing or stale', 'accepted']);
  assert.equal(attempts.filter((s) => s.bodyBytes !== undefined).length, 1, 'the body was received exactly once');
});

test('a body over the retry buffer when the API demands a new nonce: 502 with a clear message, nothing half-sent twice', async () => {
  api.rotateNonce();
  // A fresh sign-in: its handle knows no nonce, so the body would need buffering.
  const other = new BrowserClient(stack.url);
  await other.signIn('bob');
  const big = Buffer.alloc(DPOP_RETRY_BUFFER_BYTES + 200_000, 0x61);
  const before = api.seen.length;
  const response = await other.api('/api/secure/upload', { method: 'POST', body: big });
  const body = (await response.json()) as { error: string; message?: string };
  assert.equal(response.status, 502);
  assert.equal(body.error, 'upstream_unavailable');
  assert.match(body.message ?? '', /DPoP nonce.*cannot be sent twice/);
  const attempts = api.seen.slice(before);
  assert.deepEqual(attempts.map((s) => s.outcome), ['nonce missing or stale']);
  // The nonce is learnt from that answer: the same call now goes through, streamed.
  const retried = await other.api('/api/secure/upload', { method: 'POST', body: big });
  const retriedBody = (await retried.json()) as Record<string, unknown>;
  assert.equal(retried.status, 200, JSON.stringify(retriedBody));
  assert.equal(retriedBody.bodyBytes, big.byteLength);
});

test('a streaming upload on a DPoP route (nonce known): streamed through, complete', async () => {
  assert.equal((await browser.api('/api/secure/whoami')).status, 200);
  const chunk = Buffer.alloc(256 * 1024, 0x62);
  const chunks = 12;
  let sent = 0;
  let lastSentAt = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === chunks) return controller.close();
      sent += 1;
      await sleep(20);
      if (sent === chunks) lastSentAt = Date.now();
      controller.enqueue(chunk);
    },
  });
  const response = await browser.api('/api/secure/upload', { method: 'PUT', body: stream, duplex: 'half' } as RequestInit);
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.equal(body.bodyBytes, chunk.byteLength * chunks);
  assert.equal(body.bodySha256, sha256(Buffer.concat(Array.from({ length: chunks }, () => chunk))));
  // Streamed, not buffered: the API had the first bytes before the browser sent the last.
  const seen = api.seen.filter((s) => s.path === '/upload' && s.outcome === 'accepted').at(-1);
  assert.ok(seen?.firstByteAt && seen.firstByteAt < lastSentAt, `first byte at ${seen?.firstByteAt}, last chunk sent at ${lastSentAt}`);
});

test('refresh keeps the binding: the next DPoP-bound token has the same cnf.jkt', async () => {
  const first = (await (await browser.api('/api/secure/whoami')).json()) as { tokenJkt: string };
  const issuedBefore = boundTokens().length;
  // The API's tokens live 4 s and are renewed after half of it.
  await sleep(2_500);
  const second = (await (await browser.api('/api/secure/whoami')).json()) as { tokenJkt: string; dpopBound: boolean };
  assert.equal(second.dpopBound, true);
  assert.ok(boundTokens().length > issuedBefore, 'a new DPoP-bound token was issued');
  assert.equal(second.tokenJkt, first.tokenJkt);
  // And the non-DPoP route still gets its Bearer token afterwards.
  assert.equal((await browser.api('/api/demo/whoami')).status, 200);
});

test('nothing secret: no private key, proof or DPoP token in the logs; the proof header carries only the public key', async () => {
  const logs = stack.serverStderr() + stack.serverStdout();
  for (const token of boundTokens()) assert.ok(!logs.includes(token), 'a DPoP-bound token in the logs');
  assert.doesNotMatch(logs, /"d":"/);
  assert.doesNotMatch(logs, /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
  // The cookie is sealed: no JWK member in it.
  assert.doesNotMatch(browser.cookieHeader(), /P-256|"kty"/);
  // The thumbprint the API saw is of a public key; the cookie's key is what produced it.
  const accepted = api.seen.filter((s) => s.outcome === 'accepted');
  assert.ok(accepted.every((s) => typeof s.proofJkt === 'string' && s.proofJkt === s.tokenJkt));
  // Sanity of the helper: a JWK thumbprint of a private key equals that of its public half.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = await exportJWK(privateKey);
  await importJWK(jwk, 'ES256');
  assert.equal(await calculateJwkThumbprint(jwk), await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }));
});

test('a DPoP route with a provider that does not advertise DPoP: npm start refuses to start, naming the route and the fix', async () => {
  await assert.rejects(
    startProductionStack({ npmStart: true, dpopRoute: true, idp: { dpop: false } }),
    (error: Error) => {
      assert.match(error.message, /the route "\/api\/secure" has "dpop": true but the identity provider does not advertise DPoP/);
      assert.match(error.message, /enable DPoP/);
      return true;
    },
  );
});
