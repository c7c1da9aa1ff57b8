import { scryptSync } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';

/**
 * SESSION_SECRETS: how strong a secret must be, and the password id each cookie names.
 *
 * Why strength matters more than length: iron derives its AES and HMAC keys from the
 * secret with PBKDF2 at one iteration, with the salts in the cookie itself, so one sealed
 * cookie lets anyone test guesses offline at the cost of a SHA-1 or two per guess. Only a
 * secret with real randomness (32 random bytes: `openssl rand -base64 32` or
 * `openssl rand -hex 32`) makes that search hopeless. Length alone let 32 × "a" through.
 */

/** Every secret is at least this long (iron-session refuses shorter passwords). */
export const MIN_SECRET_CHARACTERS = 32;

/**
 * The estimated-randomness floor, in bits. The estimate is the secret's length times the
 * Shannon entropy of its own character frequencies: an upper bound on how much randomness
 * it can hold, generous to random strings. Measured over 200,000 samples each: 32 random
 * bytes score 182–227 (base64url), 189–234 (base64) and 216–255 (hex); 24 random bytes in
 * base64 at most 160; 16 random bytes in hex at most 127; an English phrase of 36
 * characters about 131; any run of one repeated character 0. 168 refuses all of the weak
 * ones and sits 7.7 standard deviations under the mean of the weakest random form
 * (base64url: mean 208, standard deviation 5.3).
 */
export const MIN_SECRET_ENTROPY_BITS = 168;

/**
 * A random string does not compress; a repeated pattern does ("0123456789abcdef" × 4
 * scores a perfect 256 bits by character frequencies, yet deflates to a third of its
 * length). Random base64 or hex never deflates below its own length.
 */
const MIN_DEFLATED_FRACTION = 0.75;

function estimatedEntropyBits(secret: string): number {
  const characters = [...secret];
  const counts = new Map<string, number>();
  for (const c of characters) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bitsPerCharacter = 0;
  for (const count of counts.values()) {
    const p = count / characters.length;
    bitsPerCharacter -= p * Math.log2(p);
  }
  return bitsPerCharacter * characters.length;
}

function isPatterned(secret: string): boolean {
  const bytes = Buffer.from(secret, 'utf8');
  return deflateRawSync(bytes, { level: 9 }).length < bytes.length * MIN_DEFLATED_FRACTION;
}

/**
 * Why a secret is too weak to seal sessions with, or undefined when it is strong enough.
 * The answer never quotes the secret, nor anything computed from it.
 */
export function secretWeakness(secret: string): string | undefined {
  if (secret.length < MIN_SECRET_CHARACTERS) return `is ${secret.length} characters; each must have ${MIN_SECRET_CHARACTERS}+`;
  if (estimatedEntropyBits(secret) < MIN_SECRET_ENTROPY_BITS || isPatterned(secret)) {
    return 'is not random enough (repeated characters, a pattern, words or fewer than 32 random bytes); each must carry 32 random bytes';
  }
  return undefined;
}

/**
 * scrypt parameters of the password id (RFC 7914: N = 2^14, r = 8, p = 1 takes 16 MiB
 * and 175–210 ms per secret, measured on a busy 2-core machine). Computed once per secret
 * per process, at start, never per request.
 */
const PASSWORD_ID_SCRYPT = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
/** Fixed, public salt: the id must be the same on every instance and after restarts. */
const PASSWORD_ID_LABEL = 'cloakroom session password id v2';

const passwordIds = new Map<string, number>();

/**
 * The stable numeric id of a secret, which every cookie carries in clear so that the
 * broker finds the secret it was sealed with after secrets are added or reordered
 * (iron-session keys its password map by number). It used to be the first 32 bits of
 * SHA-256(secret): a one-hash oracle for guessing the secret. It is now derived with
 * scrypt, so testing a guess against it costs more than testing it against the seal
 * itself; the seal stays the cheaper oracle, which is why the real defence is the
 * randomness that `secretWeakness` requires.
 */
export function passwordId(secret: string): number {
  let id = passwordIds.get(secret);
  if (id === undefined) {
    id = scryptSync(secret, PASSWORD_ID_LABEL, 4, PASSWORD_ID_SCRYPT).readUInt32BE(0) + 1;
    passwordIds.set(secret, id);
  }
  return id;
}
