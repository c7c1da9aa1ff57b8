import { createHash } from 'node:crypto';
import { sealData, unsealData } from 'iron-session';
import { serializeCookie, type CookieAttributes } from '../http/cookies.ts';

/**
 * The session cookie codec: iron seal/unseal, key rotation, and chunking over several
 * cookies when the seal outgrows one (browsers drop a cookie above 4096 bytes).
 */

/** Below the 4096-byte per-cookie limit with room for the name and attributes. */
export const CHUNK_SIZE = 3800;

/**
 * The seal does not fit the cookie budget (SESSION_COOKIE_MAX_BYTES). Thrown instead of
 * writing cookies that a reverse proxy (nginx: 8 KB per header line) or Node (16 KiB of
 * headers in all) would refuse on every later request — with `Path=/`, including the
 * requests to /auth/logout that could clear them.
 */
export class SessionTooLargeError extends Error {
  readonly bytes: number;
  readonly budget: number;
  constructor(bytes: number, budget: number) {
    super(`the session needs ${bytes} bytes of cookies, over the budget of ${budget}`);
    this.name = 'SessionTooLargeError';
    this.bytes = bytes;
    this.budget = budget;
  }
}

/** The most chunks a family within `budget` bytes can have (each name costs bytes too). */
export function maxChunks(budget: number): number {
  return Math.max(1, Math.ceil(budget / CHUNK_SIZE));
}

/**
 * The bytes the family takes in the browser's `Cookie` header: `name=value; ` for every
 * cookie (the last one's `; ` counted too, as the cookies of other names follow it).
 */
export function cookieHeaderBytes(cookies: ReadonlyArray<readonly [string, string]>): number {
  let bytes = 0;
  for (const [name, value] of cookies) bytes += Buffer.byteLength(name) + 1 + Buffer.byteLength(value) + 2;
  return bytes;
}

/** The cookies (name, value) that carry `sealed`: one cookie, or chunks `name.0 … name.N`. */
export function layoutChunks(name: string, sealed: string): Array<[string, string]> {
  if (sealed.length <= CHUNK_SIZE) return [[name, sealed]];
  const count = Math.ceil(sealed.length / CHUNK_SIZE);
  return chunkNames(name, count).map((n, i) => [n, sealed.slice(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)]);
}

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
  // Bounded by the cookies the request carries (the server's header limit bounds those).
  for (let i = 0; i < cookies.size; i++) {
    const chunk = cookies.get(`${name}.${i}`);
    if (chunk === undefined) break;
    value += chunk;
  }
  return value || undefined;
}

/** What the family the browser sent takes in its `Cookie` header. */
export function presentBytes(cookies: Map<string, string>, present: readonly string[]): number {
  return cookieHeaderBytes(present.map((n) => [n, cookies.get(n) ?? '']));
}

/** Every cookie name of this session cookie family present in the request. */
export function presentNames(cookies: Map<string, string>, name: string): string[] {
  const prefix = `${name}.`;
  return [...cookies.keys()].filter((n) => n === name || (n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length))));
}

/**
 * Set-Cookie values that store `sealed` under `name`, in one cookie or in chunks, and
 * expire every other name of the family the browser may still hold (a shrunk session must
 * not leave a stale chunk behind that would corrupt the next read, nor a stale single
 * cookie that would win it). Throws `SessionTooLargeError` when the family would take
 * more than `budget` bytes of the Cookie header; nothing is written then.
 */
export function writeChunked(
  name: string,
  sealed: string,
  attributes: CookieAttributes,
  present: readonly string[],
  budget: number,
): string[] {
  const cookies = layoutChunks(name, sealed);
  const bytes = cookieHeaderBytes(cookies);
  if (bytes > budget) throw new SessionTooLargeError(bytes, budget);
  const names = cookies.map(([n]) => n);
  const headers = cookies.map(([n, value]) => serializeCookie(n, value, attributes));
  for (const stale of familyNames(name, budget, present)) {
    if (!names.includes(stale)) headers.push(serializeCookie(stale, '', { ...attributes, maxAge: 0 }));
  }
  return headers;
}

/**
 * Every name of the family that the browser may hold: the single cookie, every chunk
 * the budget allows, and any other chunk this request carried (a family written under
 * an older, larger budget). Not only what this request carried: another answer may
 * have changed the family since it was sent (chunked ⇄ single), and the names it
 * did not carry would survive.
 */
export function familyNames(name: string, budget: number, present: readonly string[] = []): string[] {
  return [...new Set([name, ...chunkNames(name, maxChunks(budget)), ...present])];
}

export function expireAll(present: readonly string[], attributes: CookieAttributes): string[] {
  return present.map((n) => serializeCookie(n, '', { ...attributes, maxAge: 0 }));
}

/** A short, non-reversible key for a secret value (cache and store keys). */
export function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}
