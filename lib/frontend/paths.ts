/**
 * Which file a request path names inside the frontend's directory — or why none may be.
 * The path is the browser's and treated as hostile (CWE-22): it is decoded exactly once,
 * and anything that another decoding or a lenient file system could turn into a step
 * out of the directory is refused rather than "cleaned up": dot segments, empty
 * segments, backslashes, encoded slashes, NUL and other control characters. Symlinks are
 * checked after resolution (static-files.ts, realpath), so a link inside the build that
 * points out of it serves nothing either.
 */

/** Printable ASCII only, as a URL serializer sends it; backslash refused (browsers read it as `/`). */
const RAW_PATH = /^\/[\x21-\x5b\x5d-\x7e]*$/;
/** A `%` that does not start a `%XX` triplet. */
const MALFORMED_PERCENT = /%(?![0-9A-Fa-f]{2})/;
/** `%2F` and `%5C`: a slash or backslash that only appears after decoding (a second path separator). */
const ENCODED_SEPARATOR = /%(?:2f|5c)/i;
/** C0, DEL and C1 controls (NUL truncates a path in C libraries), and backslash, in the decoded form. */
const DECODED_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\\]/;

export type FrontendPath =
  | { ok: true; /** decoded segments, none empty, none a dot segment */ segments: string[] }
  | { ok: false; reason: string; /** a dotfile: answered 404, as if absent */ hidden?: boolean };

/** The decoded segments of a raw request path (the query already removed). */
export function frontendPathSegments(rawPath: string, options: { allowDotfiles?: boolean } = {}): FrontendPath {
  if (rawPath.length > 2048) return { ok: false, reason: 'too long' };
  if (!RAW_PATH.test(rawPath)) return { ok: false, reason: 'characters outside printable ASCII, or a backslash' };
  if (MALFORMED_PERCENT.test(rawPath)) return { ok: false, reason: 'a malformed percent-escape' };
  if (ENCODED_SEPARATOR.test(rawPath)) return { ok: false, reason: 'an encoded slash or backslash' };
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return { ok: false, reason: 'a percent-escape that is not UTF-8' };
  }
  if (DECODED_FORBIDDEN.test(decoded)) return { ok: false, reason: 'a control character or backslash' };
  // NFKC folds look-alikes (fullwidth `．`, `／`) into `.` and `/`: a file system or
  // another layer that normalises must not see a dot segment or separator either.
  const folded = decoded.normalize('NFKC');
  if (folded !== decoded && (folded.includes('/..') || folded.includes('\\') || folded.split('/').length !== decoded.split('/').length)) {
    return { ok: false, reason: 'a character that normalises to a separator or dot' };
  }
  const segments = decoded.slice(1).split('/');
  // A trailing slash names a directory: its last, empty segment is dropped.
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop();
  for (const segment of segments) {
    if (segment === '') return { ok: false, reason: 'an empty segment' };
    const bare = segment.trimEnd();
    if (bare === '.' || bare === '..') return { ok: false, reason: 'a dot segment' };
    // Windows and some file systems drop trailing dots and spaces: `..` + ` ` is `..`.
    if (/^\.+[ .]*$/.test(segment)) return { ok: false, reason: 'a dot segment' };
    // Dotfiles (.env, .git/) are never part of a build that should be published.
    if (!options.allowDotfiles && segment.startsWith('.')) return { ok: false, reason: 'a hidden file', hidden: true };
  }
  return { ok: true, segments };
}

/** Whether the last segment has a file extension (`/assets/app.js`): such a path is a file, never a page. */
export function hasFileExtension(segments: readonly string[]): boolean {
  const last = segments[segments.length - 1];
  return last !== undefined && /\.[A-Za-z0-9]{1,12}$/.test(last);
}

/** Paths of the broker's own that never reach the app, nor fall back to it. */
export const RESERVED_PREFIXES: readonly string[] = ['/api', '/auth', '/ops', '/.well-known'];

export function isReservedPath(pathname: string): boolean {
  return RESERVED_PREFIXES.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`));
}
