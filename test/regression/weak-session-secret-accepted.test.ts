/**
 * AUDIT L14: SESSION_SECRETS was checked for length only, so 32 × "a" sealed sessions. iron
 * derives its keys with one PBKDF2 iteration and the salts travel in the cookie: one
 * cookie is an offline oracle for guessing a weak secret. Secrets must carry real
 * randomness; what `openssl rand -base64 32` and `openssl rand -hex 32` print still passes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';
import { secretWeakness } from '../../lib/config/secrets.ts';

const ENV = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
};

function refusal(secrets: string): string[] {
  try {
    loadConfig({ ...ENV, SESSION_SECRETS: secrets });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
}

const WEAK = {
  'one character repeated': 'a'.repeat(32),
  'two characters alternating': 'ab'.repeat(20),
  'a hex pattern repeated': '0123456789abcdef'.repeat(4),
  'a phrase': 'the-old-session-secret-32-characters',
  '16 random bytes in hex (half the randomness needed)': randomBytes(16).toString('hex'),
  'a long phrase of words': 'correct horse battery staple correct horse battery',
};

describe('weak SESSION_SECRETS are refused', () => {
  for (const [what, secret] of Object.entries(WEAK)) {
    it(`refuses ${what}, without quoting it`, () => {
      const problems = refusal(secret);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] as string, /^SESSION_SECRETS entry 1 is not random enough .* must carry 32 random bytes \(e\.g\. `openssl rand -base64 32`\)$/);
      assert.ok(!problems[0]?.includes(secret));
    });
  }

  it('names the weak entry among strong ones', () => {
    const problems = refusal(`${randomBytes(32).toString('base64')},${'z'.repeat(40)}`);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] as string, /^SESSION_SECRETS entry 2 is not random enough/);
  });
});

describe('random secrets pass, in every form the README suggests', () => {
  // 2,000 fresh samples per form: the floor sits about seven standard deviations under them.
  for (const [form, make] of [
    ['openssl rand -base64 32', () => randomBytes(32).toString('base64')],
    ['openssl rand -hex 32', () => randomBytes(32).toString('hex')],
    ['32 random bytes in base64url', () => randomBytes(32).toString('base64url')],
    ['48 random bytes in base64', () => randomBytes(48).toString('base64')],
  ] as const) {
    it(form, () => {
      for (let i = 0; i < 2000; i++) {
        const secret = make();
        assert.equal(secretWeakness(secret), undefined, secret);
      }
      assert.deepEqual(refusal(make()), []);
    });
  }
});
