import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  CHUNK_SIZE,
  cookieHeaderBytes,
  familyNames,
  SessionTooLargeError,
  presentNames,
  readChunked,
  seal,
  sealedWithOlderSecret,
  unseal,
  writeChunked,
  type SealKeys,
} from '../../../lib/session/codec.ts';
import { parseCookies, type CookieAttributes } from '../../../lib/http/cookies.ts';
import { loadConfig } from '../../../lib/config/load.ts';
import type { Session } from '../../../lib/session/session.ts';

// `openssl rand -base64 32`: loadConfig refuses secrets without real randomness.
const OLD_SECRET = '3rNClzx/7WVYYEHynpb9/FgREA9Y9o9UsjliUckQ1Kk=';
const NEW_SECRET = 'QGL/5HDNjRe3SjN2xQg9jiIwB8gZq5lwUJGs3YxOrAE=';
const FOREIGN_SECRET = 'somebody-elses-secret-of-32-characters';

const KEYS: SealKeys = { sealPassword: { 1: NEW_SECRET }, unsealPasswords: { 1: NEW_SECRET } };
const TTL = 3600;

/** The most demanding attributes the broker writes: https, a week's Max-Age. */
const ATTRIBUTES: CookieAttributes = { path: '/', httpOnly: true, secure: true, sameSite: 'strict', maxAge: 604_800 };
const NAME = '__Host-cloakroom';
/** Large enough for every layout these tests write (up to three chunks). */
const BUDGET = 16_384;

/** What the browser sends back after storing these Set-Cookie values (expired ones dropped). */
function browserCookies(setCookies: string[]): Map<string, string> {
  const jar: string[] = [];
  for (const header of setCookies) {
    if (header.includes('; Max-Age=0')) continue;
    jar.push(header.slice(0, header.indexOf(';')));
  }
  return parseCookies(jar.join('; '));
}

function cookieName(setCookie: string): string {
  return setCookie.slice(0, setCookie.indexOf('='));
}

/** A seal of about `bytes` characters (random content does not compress). */
async function sealOfAbout(bytes: number): Promise<string> {
  return seal({ blob: randomBytes(Math.floor((bytes * 3) / 4 / 1.34)).toString('base64url') }, KEYS, TTL);
}

describe('seal and unseal', () => {
  it('round-trips', async () => {
    const data = { v: 1, sub: 'alice', nested: { list: [1, 'two', null], unicode: 'Zoë ✓' } };
    const sealed = await seal(data, KEYS, TTL);
    assert.match(sealed, /^Fe26\.2\*1\*/);
    assert.ok(!sealed.includes('alice'), 'the seal is encrypted');
    assert.deepEqual(await unseal(sealed, KEYS, TTL), { data });
  });

  it('a tampered seal is invalid, never a throw', async () => {
    const sealed = await seal({ sub: 'alice' }, KEYS, TTL);
    const parts = sealed.split('*');
    // Flip one character of the ciphertext (part 4): the HMAC no longer matches.
    const cipher = parts[4] as string;
    parts[4] = (cipher[0] === 'A' ? 'B' : 'A') + cipher.slice(1);
    assert.deepEqual(await unseal(parts.join('*'), KEYS, TTL), { failure: 'invalid' });
    // A changed expiry is covered by the HMAC too.
    const longer = sealed.split('*');
    longer[5] = String(Number(longer[5]) + 3_600_000);
    assert.deepEqual(await unseal(longer.join('*'), KEYS, TTL), { failure: 'invalid' });
  });

  it('garbage is invalid', async () => {
    for (const garbage of ['', 'x', 'Fe26.2*1*a*b*c*d*e*f', 'Fe26.1**a*b*c**d*e', '*'.repeat(8)]) {
      assert.deepEqual(await unseal(garbage, KEYS, TTL), { failure: 'invalid' }, JSON.stringify(garbage));
    }
  });

  it('an empty object reads as invalid (nothing to restore)', async () => {
    assert.deepEqual(await unseal(await seal({}, KEYS, TTL), KEYS, TTL), { failure: 'invalid' });
  });

  it('a seal under a password id we do not know is unknown-password', async () => {
    const sealed = await seal({ sub: 'mallory' }, { sealPassword: { 7: FOREIGN_SECRET }, unsealPasswords: { 7: FOREIGN_SECRET } }, TTL);
    assert.deepEqual(await unseal(sealed, KEYS, TTL), { failure: 'unknown-password' });
  });

  it('a seal under our id but a foreign secret is invalid', async () => {
    const sealed = await seal({ sub: 'mallory' }, { sealPassword: { 1: FOREIGN_SECRET }, unsealPasswords: { 1: FOREIGN_SECRET } }, TTL);
    assert.deepEqual(await unseal(sealed, KEYS, TTL), { failure: 'invalid' });
  });

  it('an expired seal is expired (sealed with a clock two minutes back, ttl 1 s, past iron\'s 60 s skew)', async (t) => {
    const realNow = Date.now();
    t.mock.method(Date, 'now', () => realNow - 120_000);
    const sealed = await seal({ sub: 'alice' }, KEYS, 1);
    t.mock.restoreAll();
    assert.deepEqual(await unseal(sealed, KEYS, 1), { failure: 'expired' });
  });

  it('a seal within its ttl reads, whatever ttl the reader passes', async (t) => {
    const realNow = Date.now();
    t.mock.method(Date, 'now', () => realNow - 120_000);
    const sealed = await seal({ sub: 'alice' }, KEYS, 3600);
    t.mock.restoreAll();
    assert.deepEqual(await unseal(sealed, KEYS, 1), { data: { sub: 'alice' } });
  });
});

describe('rotation', () => {
  const oldOnly: SealKeys = { sealPassword: { 11: OLD_SECRET }, unsealPasswords: { 11: OLD_SECRET } };
  const rotated: SealKeys = { sealPassword: { 22: NEW_SECRET }, unsealPasswords: { 22: NEW_SECRET, 11: OLD_SECRET } };

  it('a seal made with the old secret unseals when that secret is listed second', async () => {
    const sealed = await seal({ sub: 'alice' }, oldOnly, TTL);
    assert.deepEqual(await unseal(sealed, rotated, TTL), { data: { sub: 'alice' } });
    assert.equal(sealedWithOlderSecret(sealed, rotated), true);
  });

  it('a fresh seal uses the first secret and is not older', async () => {
    const sealed = await seal({ sub: 'alice' }, rotated, TTL);
    assert.match(sealed, /^Fe26\.2\*22\*/);
    assert.equal(sealedWithOlderSecret(sealed, rotated), false);
    assert.deepEqual(await unseal(sealed, rotated, TTL), { data: { sub: 'alice' } });
  });

  it('a retired secret no longer unseals', async () => {
    const sealed = await seal({ sub: 'alice' }, oldOnly, TTL);
    const retired: SealKeys = { sealPassword: { 22: NEW_SECRET }, unsealPasswords: { 22: NEW_SECRET } };
    assert.deepEqual(await unseal(sealed, retired, TTL), { failure: 'unknown-password' });
  });

  it('works end to end with the keys loadConfig derives from SESSION_SECRETS', async () => {
    const env = { APP_BASE_URL: 'http://localhost:3000', OIDC_ISSUER: 'https://id.example.com', OIDC_CLIENT_ID: 'c', OIDC_CLIENT_SECRET: 's' };
    const before = loadConfig({ ...env, SESSION_SECRETS: OLD_SECRET }).session;
    const after = loadConfig({ ...env, SESSION_SECRETS: `${NEW_SECRET},${OLD_SECRET}` }).session;
    const sealed = await seal({ sub: 'alice' }, before, TTL);
    assert.deepEqual(await unseal(sealed, after, TTL), { data: { sub: 'alice' } });
    assert.equal(sealedWithOlderSecret(sealed, after), true);
    const resealed = await seal({ sub: 'alice' }, after, TTL);
    assert.equal(sealedWithOlderSecret(resealed, after), false);
    assert.deepEqual(await unseal(resealed, before, TTL), { failure: 'unknown-password' });
  });
});

/** Names the Set-Cookie values store (not expire). */
function written(headers: string[]): string[] {
  return headers.filter((h) => !h.includes('; Max-Age=0')).map(cookieName);
}

/** Names the Set-Cookie values expire. */
function expired(headers: string[]): string[] {
  return headers.filter((h) => h.includes('; Max-Age=0')).map(cookieName);
}

/** Every name of the family within BUDGET (the single cookie and five chunks). */
const FAMILY = [NAME, ...Array.from({ length: Math.ceil(BUDGET / CHUNK_SIZE) }, (_, i) => `${NAME}.${i}`)];

describe('chunking', () => {
  it('a seal that fits is one cookie named exactly as asked; every other name of the family is expired', async () => {
    const sealed = await seal({ sub: 'alice' }, KEYS, TTL);
    const headers = writeChunked(NAME, sealed, ATTRIBUTES, [], BUDGET);
    assert.equal(headers[0], `${NAME}=${sealed}; Path=/; Max-Age=604800; HttpOnly; Secure; SameSite=Strict`);
    assert.deepEqual(written(headers), [NAME]);
    assert.deepEqual(expired(headers), FAMILY.slice(1));
    for (const header of headers.slice(1)) {
      assert.match(header, /=; Path=\/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict$/);
    }
    assert.equal(readChunked(browserCookies(headers), NAME), sealed);
  });

  it('a 10 KB seal becomes name.0..name.2, each Set-Cookie at most 4096 bytes with its attributes', async () => {
    const sealed = await sealOfAbout(10_240);
    assert.ok(sealed.length > 2 * CHUNK_SIZE && sealed.length <= 3 * CHUNK_SIZE, `seal is ${sealed.length} bytes`);
    const headers = writeChunked(NAME, sealed, ATTRIBUTES, [], BUDGET);
    assert.deepEqual(written(headers), [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`]);
    for (const header of headers) {
      assert.ok(Buffer.byteLength(header) <= 4096, `${Buffer.byteLength(header)} bytes`);
      assert.ok(header.endsWith('; HttpOnly; Secure; SameSite=Strict'), 'every cookie has the attributes');
    }
    const cookies = browserCookies(headers);
    assert.equal(readChunked(cookies, NAME), sealed);
    assert.deepEqual(presentNames(cookies, NAME), [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`]);
    assert.deepEqual(await unseal(readChunked(cookies, NAME) as string, KEYS, TTL), await unseal(sealed, KEYS, TTL));
  });

  it('a seal of exactly CHUNK_SIZE is one cookie; one byte more is two chunks', () => {
    const exact = 'a'.repeat(CHUNK_SIZE);
    assert.deepEqual(written(writeChunked(NAME, exact, ATTRIBUTES, [], BUDGET)), [NAME]);
    const over = `${exact}b`;
    const headers = writeChunked(NAME, over, ATTRIBUTES, [], BUDGET);
    assert.deepEqual(written(headers), [`${NAME}.0`, `${NAME}.1`]);
    assert.equal(readChunked(browserCookies(headers), NAME), over);
  });

  it('shrinking from three chunks to one cookie expires the stale chunks', async () => {
    const small = await seal({ sub: 'alice' }, KEYS, TTL);
    const present = [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`];
    const headers = writeChunked(NAME, small, ATTRIBUTES, present, BUDGET);
    assert.deepEqual(written(headers), [NAME]);
    for (const stale of present) assert.ok(expired(headers).includes(stale), stale);
    assert.equal(readChunked(browserCookies(headers), NAME), small);
  });

  it('growing from one cookie to chunks expires the single cookie, which would otherwise win the next read', async () => {
    const large = await sealOfAbout(10_240);
    const headers = writeChunked(NAME, large, ATTRIBUTES, [NAME], BUDGET);
    assert.deepEqual(written(headers), [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`]);
    assert.ok(expired(headers).includes(NAME));
  });

  it('shrinking from three chunks to two expires the third', () => {
    const headers = writeChunked(NAME, 'a'.repeat(CHUNK_SIZE + 1), ATTRIBUTES, [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`], BUDGET);
    assert.deepEqual(written(headers), [`${NAME}.0`, `${NAME}.1`]);
    assert.ok(expired(headers).includes(`${NAME}.2`));
  });

  it('a family written under a larger budget is expired beyond the chunks this budget allows', () => {
    const legacy = Array.from({ length: 10 }, (_, i) => `${NAME}.${i}`);
    const headers = writeChunked(NAME, 'a'.repeat(100), ATTRIBUTES, legacy, 7168);
    assert.deepEqual(written(headers), [NAME]);
    assert.deepEqual(expired(headers).sort(), [...legacy].sort());
  });

  it('a gap in the chunks reads as the chunks before it, which then fail to unseal, never a throw', async () => {
    const sealed = await sealOfAbout(10_240);
    const cookies = browserCookies(writeChunked(NAME, sealed, ATTRIBUTES, [], BUDGET));
    cookies.delete(`${NAME}.1`);
    const value = readChunked(cookies, NAME);
    assert.equal(value, cookies.get(`${NAME}.0`));
    assert.deepEqual(await unseal(value as string, KEYS, TTL), { failure: 'invalid' });
  });

  it('no cookie, or chunks not starting at 0, read as nothing', () => {
    assert.equal(readChunked(new Map(), NAME), undefined);
    assert.equal(readChunked(new Map([[`${NAME}.1`, 'x']]), NAME), undefined);
    assert.equal(readChunked(new Map([[NAME, '']]), NAME), undefined);
  });

  it('refuses a family over the byte budget, counted as the Cookie header carries it (name=value; for each chunk)', () => {
    const budget = 7168;
    // Two chunks: 3800 + rest, each with its name, "=" and "; ".
    const overhead = (n: number) => `${NAME}.${n}`.length + 3;
    const fits = 'a'.repeat(budget - overhead(0) - overhead(1));
    assert.equal(cookieHeaderBytes([[`${NAME}.0`, fits.slice(0, CHUNK_SIZE)], [`${NAME}.1`, fits.slice(CHUNK_SIZE)]]), budget);
    assert.deepEqual(written(writeChunked(NAME, fits, ATTRIBUTES, [], budget)), [`${NAME}.0`, `${NAME}.1`]);
    const over = `${fits}a`;
    assert.throws(
      () => writeChunked(NAME, over, ATTRIBUTES, [], budget),
      (error: unknown) => error instanceof SessionTooLargeError && error.bytes === budget + 1 && error.budget === budget,
    );
  });

  it('the family is the single name, every chunk the budget allows, and any other chunk present', () => {
    assert.deepEqual(familyNames(NAME, 7168), [NAME, `${NAME}.0`, `${NAME}.1`]);
    assert.deepEqual(familyNames(NAME, 7168, [`${NAME}.7`, NAME]), [NAME, `${NAME}.0`, `${NAME}.1`, `${NAME}.7`]);
  });

  it('presentNames keeps the name and its numbered chunks only', () => {
    const cookies = parseCookies(
      `${NAME}=a; ${NAME}.0=b; ${NAME}.12=c; ${NAME}.x=d; ${NAME}foo=e; ${NAME}.=f; ${NAME}.1a=g; ${NAME}.-1=h; other=i; cloakroom=j`,
    );
    assert.deepEqual(presentNames(cookies, NAME), [NAME, `${NAME}.0`, `${NAME}.12`]);
  });
});

describe('a session with a large ID token', () => {
  function base64url(value: unknown): string {
    return Buffer.from(JSON.stringify(value)).toString('base64url');
  }

  /** An Entra-ID-like ID token carrying 150 group claims (~9 KB). */
  function idTokenWithGroups(count: number): string {
    const groups = Array.from({ length: count }, (_, i) => `0b6f${String(i).padStart(4, '0')}-7c1e-4d2a-9f3b-8e5d6c4b3a21`);
    const header = { alg: 'RS256', typ: 'JWT', kid: 'k1' };
    const payload = {
      iss: 'https://id.example.com',
      sub: 'alice',
      aud: 'cloakroom',
      exp: 2_000_000_000,
      iat: 1_999_996_400,
      nonce: randomBytes(16).toString('base64url'),
      sid: randomBytes(16).toString('base64url'),
      name: 'Alice Example',
      email: 'alice@example.com',
      groups,
    };
    return `${base64url(header)}.${base64url(payload)}.${randomBytes(256).toString('base64url')}`;
  }

  it('round-trips through writeChunked, the browser, readChunked and unseal', async () => {
    const idToken = idTokenWithGroups(150);
    assert.ok(idToken.length > 8_000 && idToken.length < 10_000, `ID token is ${idToken.length} bytes`);
    const session: Session = {
      v: 1,
      id: randomBytes(16).toString('base64url'),
      iss: 'https://id.example.com',
      sub: 'alice',
      idpSid: 'sid-1',
      user: { sub: 'alice', name: 'Alice Example', email: 'alice@example.com' },
      idToken,
      refreshToken: randomBytes(48).toString('base64url'),
      tokens: {
        '': { value: randomBytes(600).toString('base64url'), expiresAt: 2_000_000_000_000, refreshAt: 1_999_999_940_000, scope: 'openid profile email' },
        'http://localhost:3002/': { value: randomBytes(600).toString('base64url'), expiresAt: 2_000_000_000_000, refreshAt: 1_999_999_940_000 },
      },
      createdAt: 1_999_996_400_000,
      touchedAt: 1_999_996_400_000,
    };
    const sealed = await seal(session, KEYS, TTL);
    const headers = writeChunked(NAME, sealed, ATTRIBUTES, [NAME], BUDGET);
    const chunks = headers.filter((h) => !h.includes('Max-Age=0'));
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    for (const header of headers) assert.ok(Buffer.byteLength(header) <= 4096);
    const value = readChunked(browserCookies(headers), NAME);
    assert.equal(value, sealed);
    assert.deepEqual(await unseal<Session>(value as string, KEYS, TTL), { data: session });
  });
});
