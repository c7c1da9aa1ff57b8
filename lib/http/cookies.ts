/**
 * Minimal RFC 6265 cookie parsing and serialisation. The broker writes only cookies
 * whose values are iron seals (base64url and `*~` characters), so no value encoding
 * is needed; names are checked so that a caller's mistake cannot inject attributes.
 */
export interface CookieAttributes {
  maxAge?: number;
  httpOnly?: boolean;
  secure?: boolean;
  sameSite?: 'strict' | 'lax';
  path?: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const VALUE = /^[!#-+\--:<-[\]-~]*$/;

export function parseCookies(header: string | null): Map<string, string> {
  const cookies = new Map<string, string>();
  if (!header) return cookies;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    // First occurrence wins, as in browsers' ordering (more specific path first).
    if (name && !cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  if (!TOKEN.test(name)) throw new TypeError(`invalid cookie name ${JSON.stringify(name)}`);
  if (!VALUE.test(value)) throw new TypeError('invalid cookie value');
  let cookie = `${name}=${value}`;
  cookie += `; Path=${attributes.path ?? '/'}`;
  if (attributes.maxAge !== undefined) cookie += `; Max-Age=${Math.max(0, Math.floor(attributes.maxAge))}`;
  if (attributes.maxAge === 0) cookie += '; Expires=Thu, 01 Jan 1970 00:00:00 GMT';
  if (attributes.httpOnly) cookie += '; HttpOnly';
  if (attributes.secure) cookie += '; Secure';
  if (attributes.sameSite) cookie += `; SameSite=${attributes.sameSite === 'strict' ? 'Strict' : 'Lax'}`;
  return cookie;
}
