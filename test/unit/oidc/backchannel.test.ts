import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import type { Config } from '../../../lib/config/load.ts';
import { checkLogoutClaims, logoutCutoff, verifyLogoutToken } from '../../../lib/oidc/backchannel.ts';

const ISSUER = 'https://id.example.com';
const CLIENT_ID = 'cloakroom';
const CLIENT_SECRET = 'the-client-secret-that-an-attacker-might-know';
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const KID = 'provider-key-1';

const config = {
  oidc: { issuer: ISSUER, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
  clock: { tolerance: 30, logoutTokenMaxAge: 300 },
} as unknown as Config;

interface Case {
  why: string;
  set?: Record<string, unknown>;
  unset?: string[];
  offsets?: Record<string, number>;
  header?: Record<string, string>;
  claims?: boolean;
  expect?: { sid: boolean; sub: boolean };
}
const fixtures = JSON.parse(readFileSync(new URL('../../fixtures/logout-token-payloads.json', import.meta.url), 'utf8')) as {
  refused: Case[];
  accepted: Case[];
};

let providerKey: CryptoKey;
let keys: jose.JWTVerifyGetKey;

before(async () => {
  const pair = await jose.generateKeyPair('RS256');
  providerKey = pair.privateKey;
  const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  keys = jose.createLocalJWKSet({ keys: [jwk] });
});

function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** A valid logout token's claims with the case's changes applied. */
function payloadFor(c: Case = { why: 'valid' }): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    iss: ISSUER,
    aud: CLIENT_ID,
    iat: now(),
    exp: now() + 120,
    jti: randomUUID(),
    sid: 'provider-session-1',
    sub: 'alice',
    events: { [EVENT]: {} },
  };
  for (const name of c.unset ?? []) delete payload[name];
  for (const [name, offset] of Object.entries(c.offsets ?? {})) payload[name] = now() + offset;
  Object.assign(payload, c.set ?? {});
  return payload;
}

async function sign(payload: Record<string, unknown>, header: Record<string, string> = {}, key: CryptoKey | Uint8Array = providerKey, alg = 'RS256'): Promise<string> {
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg, kid: KID, ...header }).sign(key);
}

async function tokenFor(c: Case): Promise<string> {
  return sign(payloadFor(c), c.header);
}

async function assertRefused(token: string, advertised: readonly string[] | undefined = ['RS256'], verifier: jose.JWTVerifyGetKey = keys): Promise<void> {
  await assert.rejects(verifyLogoutToken(token, config, verifier, advertised), (error: unknown) => {
    // A refusal, not a bug of the test or the module: jose's errors or the module's own checks.
    assert.ok(error instanceof jose.errors.JOSEError || (error instanceof Error && error.constructor === Error), String(error));
    return true;
  });
}

describe('verifyLogoutToken: a valid token', () => {
  it('answers sid, sub, jti and iat', async () => {
    const payload = payloadFor();
    const result = await verifyLogoutToken(await sign(payload), config, keys, ['RS256']);
    assert.deepEqual(result, { sid: 'provider-session-1', sub: 'alice', jti: payload.jti, iat: payload.iat });
  });

  for (const c of fixtures.accepted) {
    it(`accepts: ${c.why}`, async () => {
      const payload = payloadFor(c);
      const result = await verifyLogoutToken(await sign(payload, c.header), config, keys, ['RS256', 'ES256']);
      assert.equal(result.jti, payload.jti);
      assert.equal(result.iat, payload.iat);
      if (c.expect) {
        assert.equal(result.sid, c.expect.sid ? 'provider-session-1' : undefined);
        assert.equal(result.sub, c.expect.sub ? 'alice' : undefined);
      }
    });
  }

  it('defaults to RS256 when the provider advertises no algorithms', async () => {
    const result = await verifyLogoutToken(await sign(payloadFor()), config, keys, undefined);
    assert.equal(result.sid, 'provider-session-1');
  });
});

describe('verifyLogoutToken: malformed claims (test/fixtures/logout-token-payloads.json)', () => {
  for (const c of fixtures.refused) {
    it(`refuses: ${c.why}`, async () => {
      await assertRefused(await tokenFor(c));
    });
  }
});

describe('checkLogoutClaims on its own', () => {
  for (const c of fixtures.refused.filter((f) => f.claims)) {
    it(`refuses: ${c.why}`, () => {
      const header = { alg: 'RS256', ...c.header } as jose.JWTHeaderParameters;
      assert.throws(() => checkLogoutClaims(payloadFor(c) as jose.JWTPayload, header));
    });
  }

  it('answers the identifiers of a valid token', () => {
    const sidOnly = payloadFor({ why: 'sid only', unset: ['sub'], set: { jti: 'j1' } }) as jose.JWTPayload;
    assert.deepEqual(checkLogoutClaims(sidOnly, { alg: 'RS256' }), { sid: 'provider-session-1', sub: undefined, jti: 'j1', iat: sidOnly.iat });
    const subOnly = payloadFor({ why: 'sub only', unset: ['sid'], set: { jti: 'j2' } }) as jose.JWTPayload;
    assert.deepEqual(checkLogoutClaims(subOnly, { alg: 'RS256', typ: 'logout+jwt' }), { sid: undefined, sub: 'alice', jti: 'j2', iat: subOnly.iat });
  });

  it('refuses a token without iat even if jose did not', () => {
    assert.throws(() => checkLogoutClaims(payloadFor({ why: 'no iat', unset: ['iat'] }) as jose.JWTPayload, { alg: 'RS256' }), /iat missing/);
  });
});

describe('verifyLogoutToken: signatures and algorithms', () => {
  it('refuses an unsigned token (alg none), even when advertised', async () => {
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${encode({ alg: 'none', typ: 'logout+jwt' })}.${encode(payloadFor())}.`;
    await assertRefused(unsigned, ['none', 'RS256']);
    await assertRefused(unsigned, undefined);
  });

  it('refuses HS256 signed with the client secret, even when advertised and the key is at hand', async () => {
    const secret = new TextEncoder().encode(CLIENT_SECRET);
    const token = await sign(payloadFor(), {}, secret, 'HS256');
    // A key resolver that would hand out the client secret for HS256: only the
    // algorithm allow-list stands between a forged token and a logout.
    const permissive: jose.JWTVerifyGetKey = async (header, token) => (header.alg === 'HS256' ? secret : keys(header, token));
    // The forgery is sound: jose alone, told to trust HS256, accepts it.
    await jose.jwtVerify(token, permissive, { algorithms: ['HS256'] });
    await assertRefused(token, ['HS256', 'RS256'], permissive);
    await assertRefused(token, undefined, permissive);
  });

  it('refuses a token signed by another key under the provider\'s kid', async () => {
    const { privateKey } = await jose.generateKeyPair('RS256');
    await assertRefused(await sign(payloadFor(), {}, privateKey));
  });

  it('refuses a token whose kid is not in the provider\'s key set', async () => {
    await assertRefused(await sign(payloadFor(), { kid: 'unknown-key' }));
  });

  it('refuses an algorithm the provider does not advertise', async () => {
    const pair = await jose.generateKeyPair('ES256');
    const jwk = { ...(await jose.exportJWK(pair.publicKey)), kid: 'ec-1', alg: 'ES256' };
    const ecKeys = jose.createLocalJWKSet({ keys: [jwk] });
    const token = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payloadFor())))
      .setProtectedHeader({ alg: 'ES256', kid: 'ec-1' })
      .sign(pair.privateKey);
    await assertRefused(token, ['RS256'], ecKeys);
    await assertRefused(token, undefined, ecKeys);
    const result = await verifyLogoutToken(token, config, ecKeys, ['RS256', 'ES256']);
    assert.equal(result.sid, 'provider-session-1');
  });

  it('refuses a token whose signature was altered', async () => {
    const token = await sign(payloadFor());
    const [h, p, s] = token.split('.') as [string, string, string];
    const tampered = `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`;
    await assertRefused(tampered);
    // A payload swapped under a valid signature.
    const other = (await sign(payloadFor({ why: 'other', set: { sid: 'someone-else' } }))).split('.')[1];
    await assertRefused(`${h}.${other}.${s}`);
  });
});

describe('verifyLogoutToken: the clock windows come from the configuration', () => {
  const withClock = (tolerance: number, logoutTokenMaxAge: number) => ({ ...config, clock: { tolerance, logoutTokenMaxAge } }) as Config;

  it('OIDC_CLOCK_TOLERANCE: a provider clock 100 s ahead passes with 120, not with the default 30', async () => {
    const token = await sign(payloadFor({ why: 'ahead', offsets: { iat: 100, exp: 220 } }));
    await assert.rejects(verifyLogoutToken(token, config, keys, ['RS256']));
    const result = await verifyLogoutToken(token, withClock(120, 300), keys, ['RS256']);
    assert.equal(result.sid, 'provider-session-1');
  });

  it('OIDC_LOGOUT_TOKEN_MAX_AGE: a token delivered after 100 s is refused with 60, accepted with 300', async () => {
    const token = await sign(payloadFor({ why: 'queued', offsets: { iat: -100, exp: 60 } }));
    await assert.rejects(verifyLogoutToken(token, withClock(0, 60), keys, ['RS256']));
    assert.equal((await verifyLogoutToken(token, withClock(0, 300), keys, ['RS256'])).sub, 'alice');
  });
});

describe('logoutCutoff: which sessions a logout ends', () => {
  const now = 1_800_000_000_000;
  const iat = now / 1000;

  it('prompt delivery: sessions created up to now end, none created later', () => {
    assert.equal(logoutCutoff(iat, 30, now), now);
    assert.equal(logoutCutoff(iat - 2, 30, now), now);
  });

  it('iat is whole seconds: a session created later in the same second as the logout ends', () => {
    // The provider logged out at 12.9 s and wrote iat 12: a session of 12.3 s is older.
    assert.ok(logoutCutoff(iat, 0, now + 5_000) >= now + 999);
  });

  it('a delivery queued for minutes spares a session signed in again after the logout', () => {
    const queuedNow = now + 240_000;
    const cutoff = logoutCutoff(iat, 30, queuedNow);
    assert.ok(cutoff < now + 120_000, 'a sign-in 2 minutes after the logout survives');
    assert.ok(cutoff >= now + 30_000, 'a session created within the clock tolerance of the logout ends');
  });

  it('a provider clock ahead of the broker never moves the cut-off past the moment of processing', () => {
    assert.equal(logoutCutoff(iat + 25, 30, now), now);
  });
});
