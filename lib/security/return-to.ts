/**
 * The `returnTo` check of `GET /auth/login` (CONTRACT.md): after sign-in the broker
 * redirects to `returnTo`, so anything it accepts becomes a `Location` header. An
 * attacker who can make it point off-site turns the broker's trusted sign-in page into
 * an open redirector (OAuth 2.0 Security BCP, RFC 9700 §4.11) — and a phishing page
 * that follows a real login is very convincing.
 *
 * The rule is an allow-list, not a list of known tricks: `returnTo` must be a
 * same-origin absolute path, already in the canonical form the WHATWG URL parser
 * gives it, made of printable ASCII, and no server or browser decoding it once, twice
 * or three times may turn it into something that leaves the origin. A front end that
 * passes `location.pathname + location.search + location.hash` always satisfies this:
 * the URL serializer percent-encodes everything outside printable ASCII.
 *
 * Decided: `/@evil.com` is SAFE. Userinfo only exists inside an authority, and an
 * authority only starts after `//` (RFC 3986 §3.2); with `//` and `/\` refused, `@` is
 * an ordinary path character and the browser requests `/@evil.com` on this origin.
 */

import { decodedForms } from './percent-decoding.ts';

/** Longer values are refused: no real page path needs more, and it bounds the work below. */
const MAX_RETURN_TO_LENGTH = 2048;

/** The URL parser needs a base; `.invalid` (RFC 6761 §6.4) can never be a real host. */
const PARSE_BASE = 'http://x.invalid';

/**
 * Printable ASCII without the backslash. This refuses in one step: whitespace (space,
 * tab, CR, LF, NBSP, U+2028/2029 — browsers strip tab/CR/LF inside URLs, so
 * `/\t/evil.com` would become `//evil.com`), control characters, and every Unicode
 * look-alike (fullwidth solidus `／`, ideographic full stop `。`) that a normalising
 * server could fold into `/` or `.`. Backslash is refused because browsers treat `\`
 * as `/` in special URLs (WHATWG URL, "special scheme" path state).
 */
const RAW_ALLOWED = /^[\x21-\x5b\x5d-\x7e]*$/;

/** A `%` that does not start a `%XX` triplet: ambiguous between parsers (IIS reads `%u002e`). */
const MALFORMED_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** IIS-style `%uXXXX`, which may appear once `%25` has been decoded. */
const PERCENT_U = /%u[0-9A-Fa-f]{4}/i;

/**
 * In a decoded form: control characters (C0, DEL, C1), format characters (zero-width,
 * bidi overrides) and any whitespace other than the plain space that `%20` legitimately
 * decodes to (tab, CR, LF, NBSP, U+2028/2029, U+3000...).
 */
const DECODED_FORBIDDEN = /[\p{Cc}\p{Cf}]|[^\S ]/u;

/** `text` and its successive decodings; `undefined` when decoding fails or goes too deep. */
function decodedFormsOf(text: string): string[] | undefined {
  const forms = decodedForms(text);
  return typeof forms === 'string' ? undefined : forms;
}

/** `//host` and `/\host` are network-path references: the browser leaves the origin. */
function startsLikeAuthority(path: string): boolean {
  return path.startsWith('//') || path.startsWith('/\\');
}

function hasDotSegment(path: string): boolean {
  return path.split('/').some((segment) => segment === '.' || segment === '..');
}

/**
 * The value, or a decoded form of it, must not hold what a server that decodes before it
 * redirects could act on: `/%5Cevil.com`, `/%0a/evil.com`, `/x%E2%80%A8`. Checked in NFKC
 * too, for routers that fold compatibility characters (`%EF%BC%BC` is `＼`, NFKC `\`).
 */
function isDecodedValueSafe(decoded: string): boolean {
  return [decoded, decoded.normalize('NFKC')].every(
    (form) => !form.includes('\\') && !DECODED_FORBIDDEN.test(form) && !PERCENT_U.test(form),
  );
}

/**
 * The path, and each decoded form of it, must still be a rooted path without dot segments:
 * `/%2F%2Fevil.com`, `/%252e%252e//evil.com` and `/%EF%BC%8Fevil.com` (NFKC `//evil.com`)
 * are refused.
 */
function isDecodedPathSafe(decoded: string): boolean {
  return [decoded, decoded.normalize('NFKC')].every(
    (form) => !startsLikeAuthority(form) && !hasDotSegment(form),
  );
}

/**
 * The value must already be what the URL parser serialises it to: then the browser that
 * follows the redirect and this check see the same path. This is what refuses dot
 * segments in every spelling the parser knows (`/..//evil.com` and `/.%2e//evil.com`
 * both become `//evil.com`), and it also pins the origin.
 */
function isCanonicalPath(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value, PARSE_BASE);
  } catch {
    return false;
  }
  return url.origin === PARSE_BASE && url.href === PARSE_BASE + value;
}

/** Whether `value` may be used as the post-login redirect target. */
export function isSafeReturnTo(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  if (value.length === 0 || value.length > MAX_RETURN_TO_LENGTH) return false;
  // A single leading '/': no scheme (`javascript:`, `https:evil.com`), no relative path,
  // no network-path reference (`//evil.com`, `/\evil.com`).
  if (value[0] !== '/' || startsLikeAuthority(value)) return false;
  if (!RAW_ALLOWED.test(value) || MALFORMED_PERCENT.test(value)) return false;
  if (!isCanonicalPath(value)) return false;

  // The query and fragment may hold encoded slashes (`/search?q=%2F`); only the path's
  // decodings must stay a path.
  const pathEnd = value.search(/[?#]/);
  const rawPath = pathEnd === -1 ? value : value.slice(0, pathEnd);
  const valueForms = decodedFormsOf(value);
  const pathForms = decodedFormsOf(rawPath);
  if (valueForms === undefined || pathForms === undefined) return false;
  if (!valueForms.every(isDecodedValueSafe)) return false;
  if (!pathForms.every(isDecodedPathSafe)) return false;
  return true;
}

/** `value` when it is a safe `returnTo`, otherwise `/` (CONTRACT.md: "anything else becomes `/`"). */
export function safeReturnTo(value: unknown): string {
  return isSafeReturnTo(value) ? value : '/';
}
