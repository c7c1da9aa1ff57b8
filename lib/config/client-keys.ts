import { createHash, createPrivateKey, createPublicKey, type JsonWebKey as NodeJsonWebKey, type KeyObject } from 'node:crypto';

/**
 * The broker's own `private_key_jwt` keys (OIDC_CLIENT_PRIVATE_KEY): one private JWK, or
 * a JWK Set `{"keys": [...]}` whose first key signs client assertions and whose public
 * halves `GET /.well-known/jwks.json` publishes — so that a provider registered with that
 * `jwks_uri` follows a rotation (README, "Rotating keys"). Parsed here once, at start,
 * synchronously (node:crypto, which jose itself uses on Node): the configuration loader
 * lists every problem at once, and a key that cannot sign must stop the start rather than
 * the first sign-in.
 */
export interface ClientKey {
  /** The private JWK as given, with `kid` and `alg` filled in. Never logged, never published. */
  privateJwk: JsonWebKey & { kid: string; alg: string };
  /** Its public half: only the public members (RFC 7517 §4, RFC 7518 §6), `kid`, `alg`, `use`. */
  publicJwk: JsonWebKey & { kid: string; alg: string; use: 'sig' };
}

/** The JWS algorithms a key of each type may sign client assertions with (RFC 7518 §3.1, RFC 8037). */
const ALGORITHMS: Record<string, readonly string[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC:P-256': ['ES256'],
  'EC:P-384': ['ES384'],
  'EC:P-521': ['ES512'],
  'OKP:Ed25519': ['EdDSA', 'Ed25519'],
};

/** Members of a private or symmetric key (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). */
export const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Below this an RSA key is breakable by a well-funded attacker (NIST SP 800-131A: 2048 bits). */
const MIN_RSA_BITS = 2048;

function family(jwk: Record<string, unknown>): string {
  return jwk.kty === 'RSA' ? 'RSA' : `${String(jwk.kty)}:${String(jwk.crv)}`;
}

/** RFC 7638 §3.2: the required members in lexicographic order, no whitespace, SHA-256, base64url. */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  const required: Record<string, readonly string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
  const members = required[String(jwk.kty)] ?? [];
  const canonical = `{${members.map((name) => `${JSON.stringify(name)}:${JSON.stringify(jwk[name])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * The keys, or every problem found, each naming OIDC_CLIENT_PRIVATE_KEY, the key's
 * position and the fix. Values are never echoed: they are private keys.
 */
export function parseClientKeys(raw: string): { keys: ClientKey[] } | { problems: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { problems: ['OIDC_CLIENT_PRIVATE_KEY is not valid JSON: give a private JWK, or a JWK Set {"keys": [...]} whose first key signs'] };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { problems: ['OIDC_CLIENT_PRIVATE_KEY must be a JSON object: a private JWK, or a JWK Set {"keys": [...]}'] };
  }
  const isSet = 'keys' in parsed;
  const entries = isSet ? (parsed as { keys: unknown }).keys : [parsed];
  if (!Array.isArray(entries) || entries.length === 0) {
    return { problems: ['OIDC_CLIENT_PRIVATE_KEY "keys" must be a non-empty array of private JWKs (the first signs)'] };
  }
  const problems: string[] = [];
  const keys: ClientKey[] = [];
  const kids = new Map<string, number>();
  entries.forEach((entry: unknown, index) => {
    const where = isSet ? `OIDC_CLIENT_PRIVATE_KEY key ${index + 1}` : 'OIDC_CLIENT_PRIVATE_KEY';
    const found = keyProblems(entry, where);
    if ('problems' in found) {
      problems.push(...found.problems);
      return;
    }
    const first = kids.get(found.key.privateJwk.kid);
    if (first !== undefined) {
      problems.push(`${where} has the kid "${found.key.privateJwk.kid}" of key ${first + 1}: every key needs its own kid (or none, for its thumbprint)`);
      return;
    }
    kids.set(found.key.privateJwk.kid, index);
    keys.push(found.key);
  });
  return problems.length > 0 ? { problems } : { keys };
}

function keyProblems(entry: unknown, where: string): { key: ClientKey } | { problems: string[] } {
  if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return { problems: [`${where} must be a JWK object with "kty" and "d"`] };
  const jwk = entry as Record<string, unknown>;
  if (jwk.kty === 'oct') return { problems: [`${where} is a symmetric key ("kty": "oct"): private_key_jwt needs an asymmetric private key (RSA, EC or OKP) whose public half can be published`] };
  if (typeof jwk.d !== 'string') return { problems: [`${where} is not a private key (no "d"): give the private JWK; its public half is derived and published`] };
  const problems: string[] = [];
  let privateKey: KeyObject | undefined;
  try {
    privateKey = createPrivateKey({ key: jwk as NodeJsonWebKey, format: 'jwk' });
  } catch {
    problems.push(`${where} cannot be read as a private JWK (kty ${JSON.stringify(String(jwk.kty ?? 'missing'))}): check that it is complete and unaltered`);
  }
  const allowed = ALGORITHMS[family(jwk)];
  if (!allowed) problems.push(`${where} has an unsupported key type: use RSA (2048 bits or more), EC P-256/P-384/P-521 or OKP Ed25519`);
  const alg = typeof jwk.alg === 'string' ? jwk.alg : allowed?.[0];
  if (allowed && alg && !allowed.includes(alg)) {
    problems.push(`${where} has "alg": ${JSON.stringify(alg)}, which a ${family(jwk)} key cannot sign with: use one of ${allowed.join(', ')} or leave "alg" out`);
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') problems.push(`${where} has "use": ${JSON.stringify(jwk.use)}: a client assertion key must be "sig" (or leave "use" out)`);
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0)) problems.push(`${where} has a "kid" that is not a non-empty string: fix it or leave it out (its thumbprint is used)`);
  const bits = privateKey?.asymmetricKeyDetails?.modulusLength;
  if (privateKey && jwk.kty === 'RSA' && (bits ?? 0) < MIN_RSA_BITS) problems.push(`${where} is an RSA key of ${bits} bits: use ${MIN_RSA_BITS} bits or more`);
  if (problems.length > 0 || !privateKey || !alg) return { problems };

  const kid = typeof jwk.kid === 'string' ? jwk.kid : jwkThumbprint(jwk);
  // The public half from the key itself, not by deleting members from the input: whatever
  // else the JWK carried (a symmetric "k", "oth", private extensions) cannot leak.
  const exported = createPublicKey(privateKey).export({ format: 'jwk' }) as JsonWebKey;
  return {
    key: {
      privateJwk: { ...(jwk as JsonWebKey), kid, alg },
      publicJwk: { ...exported, kid, alg, use: 'sig' },
    },
  };
}
