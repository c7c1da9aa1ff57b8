/**
 * OIDC_CLIENT_PRIVATE_KEY as one private JWK or a JWK Set (lib/config/client-keys.ts):
 * the first key signs, every key's public half is published — with no private member —
 * and every problem is listed at once, naming the key, never echoing it.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { calculateJwkThumbprint } from 'jose';
import { jwkThumbprint, parseClientKeys, PRIVATE_MEMBERS, type ClientKey } from '../../../lib/config/client-keys.ts';

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
const ec = (curve = 'P-256') => generateKeyPairSync('ec', { namedCurve: curve }).privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
const ed = () => generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as Record<string, unknown>;

function keys(raw: unknown): ClientKey[] {
  const result = parseClientKeys(JSON.stringify(raw));
  if ('problems' in result) assert.fail(result.problems.join('\n'));
  return result.keys;
}
function problems(raw: unknown): string[] {
  const result = parseClientKeys(typeof raw === 'string' ? raw : JSON.stringify(raw));
  if (!('problems' in result)) assert.fail('expected problems');
  return result.problems;
}

describe('parseClientKeys', () => {
  it('takes one private JWK: kid = its RFC 7638 thumbprint (as jose computes it), alg from the type', async () => {
    const jwk = ec();
    const [key] = keys(jwk);
    assert.equal(key.privateJwk.kid, await calculateJwkThumbprint(jwk as never));
    assert.equal(jwkThumbprint(jwk), key.privateJwk.kid);
    assert.equal(key.privateJwk.alg, 'ES256');
  });

  it('takes a JWK Set in order (the first signs), keeping given kids and algs', () => {
    const set = { keys: [{ ...rsa(), kid: 'new', alg: 'PS256' }, { ...ec('P-384'), kid: 'old' }, ed()] };
    const parsed = keys(set);
    assert.deepEqual(parsed.map((k) => [k.privateJwk.kid, k.privateJwk.alg]), [['new', 'PS256'], ['old', 'ES384'], [parsed[2].privateJwk.kid, 'EdDSA']]);
  });

  it('publishes only public members, with kid, alg and use', () => {
    const set = { keys: [rsa(), ec(), ed(), { ...ec(), k: 'c2VjcmV0', oth: [] }] };
    for (const { publicJwk, privateJwk } of keys(set)) {
      for (const member of PRIVATE_MEMBERS) assert.equal(member in publicJwk, false, `${member} published`);
      assert.equal(publicJwk.kid, privateJwk.kid);
      assert.equal(publicJwk.alg, privateJwk.alg);
      assert.equal(publicJwk.use, 'sig');
    }
  });

  const refusals: Array<[string, unknown, RegExp]> = [
    ['not JSON', 'nope', /OIDC_CLIENT_PRIVATE_KEY is not valid JSON/],
    ['an array', [], /must be a JSON object/],
    ['an empty set', { keys: [] }, /"keys" must be a non-empty array/],
    ['a public key', Object.fromEntries(Object.entries(ec()).filter(([name]) => name !== 'd')), /is not a private key \(no "d"\)/],
    ['a symmetric key', { kty: 'oct', k: 'c2VjcmV0' }, /symmetric key/],
    ['a damaged key', { ...ec(), x: 'AAAA' }, /cannot be read as a private JWK/],
    ['a mismatched alg', { ...ec(), alg: 'RS256' }, /cannot sign with: use one of ES256/],
    ['an encryption key', { ...ec(), use: 'enc' }, /"use": "enc"/],
    ['an empty kid', { ...ec(), kid: '' }, /"kid" that is not a non-empty string/],
    ['a short RSA key', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' }), /RSA key of 1024 bits/],
    ['a secp256k1 key', ec('secp256k1'), /unsupported key type/],
  ];
  for (const [name, raw, expected] of refusals) {
    it(`refuses ${name}, never echoing the key`, () => {
      const found = problems(raw);
      assert.ok(found.some((p) => expected.test(p)), `${found.join('\n')} should match ${expected}`);
      const d = (raw as { d?: string } | null)?.d;
      if (d) assert.ok(!found.join('\n').includes(d), 'the private key was echoed');
    });
  }

  it('lists every bad key of a set by position, and duplicate kids', () => {
    const found = problems({ keys: [{ ...ec(), kid: 'a' }, { kty: 'oct', k: 'eA' }, { ...ec(), kid: 'a' }, { ...rsa(), alg: 'ES256' }] });
    assert.equal(found.length, 3, found.join('\n'));
    assert.match(found[0], /^OIDC_CLIENT_PRIVATE_KEY key 2 /);
    assert.match(found[1], /^OIDC_CLIENT_PRIVATE_KEY key 3 has the kid "a" of key 1/);
    assert.match(found[2], /^OIDC_CLIENT_PRIVATE_KEY key 4 /);
  });
});
