import { createHash } from 'node:crypto';
import { sealData, unsealData } from 'iron-session';
import { serializeCookie, type CookieAttributes } from '../http/cookies.ts';
import { log } from '../log.ts';

/**
 * The session cookie codec: iron seal/unseal, key rotation, and chunking over several
 * cookies when the seal outgrows one (browsers drop a cookie above 4096 bytes).
 */

/** Below the 4096-byte per-cookie limit with room for the name and attributes. */
export const CHUNK_SIZE = 3800;
/** 10 chunks = 38 KB: far above a sane session, far below header limits that would break the site. */
export const MAX_CHUNKS = 10;

export interface SealKeys {
  sealPassword: Record<number, string>;
  unsealPasswords: Record<number, string>;
}

export type UnsealFailure = 'expired' | 'invalid' | 'unknown-password';

export async function seal(data: object, keys: SealKeys, ttlSeconds: number): Promise<string> {
  return sealData(data, { password: keys.sealPassword, ttl: ttlSeconds });
}

/**
 * An unreadable seal — tampered, foreign, expired, sealed with a retired secret — is
 * "no data" plus a reason for the log, never a throw.
 */
export async function unseal<T>(
  sealed: string,
  keys: SealKeys,
  ttlSeconds: number,
): Promise<{ data: T } | { failure: UnsealFailure }> {
  let failure: UnsealFailure | undefined;
  const data = await unsealData<Record<string, unknown>>(sealed, {
    password: keys.unsealPasswords,
    ttl: ttlSeconds,
    onUnsealError: (reason) => {
      failure = reason;
    },
  });
  if (failure) return { failure };
  if (!data || typeof data !== 'object' || Object.keys(data).length === 0) return { failure: 'invalid' };
  return { data: data as T };
}

/** Whether the seal was made with a secret other than the current first one (rotation). */
export function sealedWithOlderSecret(sealed: string, keys: SealKeys): boolean {
  // Iron seals start `Fe26.2*<passwordId>*`; the id is inside the MAC'd string.
  const id = sealed.split('*', 2)[1];
  return !Object.hasOwn(keys.sealPassword, id);
}

export function chunkNames(name: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${name}.${i}`);
}

/**
 * The sealed value from either the single cookie `name` or the chunks `name.0 … name.N`.
 * Chunks must be contiguous from 0; anything else reads as no cookie.
 */
export function readChunked(cookies: Map<string, string>, name: string): string | undefined {
  const whole = cookies.get(name);
  if (whole) return whole;
  let value = '';
  for (let i = 0; i < MAX_CHUNKS; i++) {
    const chunk = cookies.get(`${name}.${i}`);
    if (chunk === undefined) break;
    value += chunk;
  }
  return value || undefined;
}

/** Every cookie name of this session cookie family present in the request. */
export function presentNames(cookies: Map<string, string>, name: string): string[] {
  const prefix = `${name}.`;
  return [...cookies.keys()].filter((n) => n === name || (n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length))));
}

/**
 * Set-Cookie values that store `sealed` under `name`, in one cookie or in chunks, and
 * expire every other name of the family the browser still holds (a shrunk session must
 * not leave a stale chunk behind that would corrupt the next read).
 */
export function writeChunked(
  name: string,
  sealed: string,
  attributes: CookieAttributes,
  present: readonly string[],
): string[] {
  const names: string[] = [];
  const values: string[] = [];
  if (sealed.length <= CHUNK_SIZE) {
    names.push(name);
    values.push(sealed);
  } else {
    const count = Math.ceil(sealed.length / CHUNK_SIZE);
    if (count > MAX_CHUNKS) {
      log.error('session_too_large', { bytes: sealed.length });
      throw new Error('session too large for cookies');
    }
    chunkNames(name, count).forEach((n, i) => {
      names.push(n);
      values.push(sealed.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE));
    });
  }
  const headers = names.map((n, i) => serializeCookie(n, values[i], attributes));
  for (const stale of present) if (!names.includes(stale)) headers.push(serializeCookie(stale, '', { ...attributes, maxAge: 0 }));
  return headers;
}

export function expireAll(present: readonly string[], attributes: CookieAttributes): string[] {
  return present.map((n) => serializeCookie(n, '', { ...attributes, maxAge: 0 }));
}

/** A short, non-reversible key for a secret value (cache and store keys). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
