/**
 * AUDIT L14: every cookie names its secret by a password id in clear, and that id was the
 * first 32 bits of SHA-256(secret): one hash per guess to test a secret offline. It is
 * now derived with scrypt, once per secret per process, so it is no cheaper to test
 * guesses against than the seal itself.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, scryptSync } from 'node:crypto';
import { loadConfig } from '../../lib/config/load.ts';

const SECRET = 'AkF8ghWPcTrwdUlWSfwLoKao0hq+PpdFhx6zaSlvUp4=';
const ENV = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: SECRET,
};

it('the password id is not a SHA-256 prefix of the secret, but scrypt of it', () => {
  const [id] = Object.keys(loadConfig(ENV).session.sealPassword).map(Number);
  const sha256Prefix = Number.parseInt(createHash('sha256').update(SECRET).digest('hex').slice(0, 8), 16) + 1;
  assert.notEqual(id, sha256Prefix);
  const expected = scryptSync(SECRET, 'cloakroom session password id v2', 4, { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }).readUInt32BE(0) + 1;
  assert.equal(id, expected);
});
