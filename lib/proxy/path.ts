/**
 * Where a proxied call goes: the route's upstream base plus the rest of the request
 * path (CONTRACT.md: `/api/orders/a/b?x=1` → `https://orders.internal/v1/a/b?x=1`).
 *
 * The browser controls the remainder, so it is treated as hostile: a remainder that
 * could leave the upstream base — in the broker's eyes, in the upstream server's after it
 * decodes once or twice, or after a framework's normalisation — is refused, never
 * "cleaned up" and forwarded. This is path traversal / SSRF through a reverse proxy
 * (CWE-22, CWE-918; Orange Tsai, "Breaking Parser Logic", Black Hat 2018): each parser
 * in the chain disagreeing about where a path goes is the whole attack.
 *
 * The URL is composed as a string from validated parts and then parsed only to be
 * checked; it is never produced by resolving user input against a base
 * (`new URL('../x', base)` is exactly the resolution an attacker wants).
 */
import type { Route } from './route-table.ts';
import { decodedForms, MAX_DECODE_PASSES } from '../security/percent-decoding.ts';

/** `origin` and `path` (path and query, as composed) are what is sent: never the re-serialised `url`. */
export type UpstreamTarget = { url: URL; origin: string; path: string };
export type UpstreamUrlResult = ({ ok: true } & UpstreamTarget) | { ok: false; reason: string };

/**
 * The raw remainder and search come from a parsed request URL, so they are printable
 * ASCII: the URL serializer percent-encodes everything else. Anything outside it (raw
 * space, tab, CR, LF, NUL, non-ASCII) did not come from a browser and could split the
 * request line or be stripped differently by another parser; none comes out of a URL parser. Backslash is refused
 * because WHATWG URL parsers treat it as `/` in http(s) URLs; `?` and `#` in a path
 * would move the rest into the query or fragment.
 */
const RAW_PATH_CHARACTERS = /^[\x21-\x22\x24-\x3e\x40-\x5b\x5d-\x7e]*$/;
const RAW_SEARCH_CHARACTERS = /^[\x21-\x22\x24-\x7e]*$/;

/** A `%` that does not start a `%XX` triplet: parsers disagree on it (IIS reads `%u002e` as `.`). */
const MALFORMED_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** IIS-style `%uXXXX`, which can surface once `%25` has been decoded. */
const PERCENT_U = /%u[0-9A-Fa-f]{4}/i;

/**
 * A percent-encoded unreserved character (ALPHA, DIGIT, `-._~`). RFC 3986 §6.2.2.2 makes
 * `%61dmin` equivalent to `admin` and lets servers normalise it, while the route table
 * is matched on the raw path: `/api/%6Frders` would skip the `/api/orders` route (its
 * methods, its auth) and reach the `/api` upstream, which may decode it to `/orders`.
 * Browsers and `encodeURIComponent` never encode these, so nothing legitimate is lost.
 */
const ENCODED_UNRESERVED = /%(?:[46][1-9A-Fa-f]|[57][0-9Aa]|3[0-9]|2[DEde]|5[Ff]|7[Ee])/;

/** C0 controls, DEL and C1 controls: header injection and terminators in every decoded form. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** A segment that a server might treat as "this" or "parent" directory. */
function isDotSegment(text: string): boolean {
  // Tomcat and Jetty drop path parameters before resolving: `..;x=1` is `..`. Some
  // Windows servers drop trailing spaces: `.. ` is `..`.
  const bare = (text.split(';', 1)[0] ?? '').trimEnd();
  return bare === '.' || bare === '..';
}

/** What a segment must not be or hold in any of its forms, in the order reasons are given. */
const FORM_CHECKS: ReadonlyArray<[string, (form: string) => boolean]> = [
  ['a dot segment', isDotSegment],
  ['"/"', (form) => form.includes('/')],
  ['"\\"', (form) => form.includes('\\')],
  ['a control character', (form) => CONTROL.test(form)],
  ['a %u escape', (form) => PERCENT_U.test(form)],
  ['a percent-encoded unreserved character', (form) => ENCODED_UNRESERVED.test(form)],
];

/**
 * The segment and each decoding of it (`%25252e` is `.` after three passes), each also
 * in NFKC, the form Unicode-normalising servers fold it to (`%E2%80%A5` is `‥`, NFKC
 * `..`; `%EF%BC%8F` is `／`, NFKC `/`). A string when the decoding itself is the problem.
 */
function formsOf(segment: string): string[] | string {
  const forms = decodedForms(segment);
  if (forms === 'malformed') return 'it is not valid percent-encoded UTF-8';
  if (forms === 'too-deep') return `it still decodes after ${MAX_DECODE_PASSES} passes`;
  for (const decoded of forms.slice()) {
    const folded = decoded.normalize('NFKC');
    if (folded !== decoded) forms.push(folded);
  }
  return forms;
}

/**
 * Why a segment of the remainder is refused, or undefined. Reasons are for the log and
 * name a category and a decoding depth, never the text: a path or a query may hold
 * personal data or an API key (L9).
 */
function segmentProblem(segment: string): string | undefined {
  const forms = formsOf(segment);
  if (typeof forms === 'string') return forms;
  for (const [what, found] of FORM_CHECKS) {
    const index = forms.findIndex(found);
    if (index === 0) return `it is or holds ${what}`;
    if (index > 0) return `a decoded form (${index} of ${forms.length - 1}) is or holds ${what}`;
  }
  return undefined;
}

function remainderProblem(remainder: string): string | undefined {
  if (remainder === '') return undefined;
  if (!remainder.startsWith('/')) return 'the path rest must start with "/"';
  if (!RAW_PATH_CHARACTERS.test(remainder)) {
    return 'the path rest holds a character a URL never carries raw (space, control, non-ASCII, "\\", "?", "#")';
  }
  if (MALFORMED_PERCENT.test(remainder)) return 'the path rest holds a "%" that starts no %XX escape';
  const segments = remainder.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    // An empty segment is refused except the last (a trailing slash, `/api/orders/`):
    // `//host` is a network-path reference and `a//b` collapses differently per server.
    if (segment === '') {
      if (i === segments.length - 1) continue;
      return `the path rest has an empty segment ("//") at segment ${i + 1}`;
    }
    const problem = segmentProblem(segment);
    if (problem) return `segment ${i + 1} of the path rest (${segment.length} characters) is refused: ${problem}`;
  }
  return undefined;
}

function searchProblem(search: string): string | undefined {
  if (search === '') return undefined;
  if (!search.startsWith('?')) return 'the query must start with "?"';
  if (!RAW_SEARCH_CHARACTERS.test(search)) {
    return 'the query holds a character a URL never carries raw (space, control, non-ASCII, "#")';
  }
  return undefined;
}

/**
 * The upstream URL for a matched route, or why the request must be refused (400
 * `invalid_request`; the reason is for the log, not the client). `remainder` is the
 * raw, still-encoded rest of the request path from `matchRoute`; `search` is the
 * request URL's `search` (`''` or `?...`), forwarded byte for byte.
 */
export function buildUpstreamUrl(route: Route, remainder: string, search: string): UpstreamUrlResult {
  const problem = remainderProblem(remainder) ?? searchProblem(search);
  if (problem) return { ok: false, reason: problem };

  const { origin } = route.upstream;
  const basePath = route.upstream.pathname.replace(/\/+$/, '');
  const path = basePath + remainder || '/';
  const composed = origin + path + search;

  // Defence in depth: the composed string must parse back to itself (no dot segment
  // removed, no character re-encoded, no backslash turned into a slash), on the same
  // origin, under the base path at a segment boundary.
  let url: URL;
  try {
    url = new URL(composed);
  } catch {
    return { ok: false, reason: 'the upstream URL does not parse' };
  }
  if (url.origin !== origin) return { ok: false, reason: 'the upstream URL left the upstream origin' };
  const underBase =
    basePath === '' || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
  if (!underBase) return { ok: false, reason: 'the upstream URL left the base path' };
  // The path must parse back to itself (no dot segment removed, nothing re-encoded). The
  // query is not compared: the WHATWG parser re-encodes `'`, `"`, `<`, `>` there, which
  // changes nothing about where the request goes, and the query is sent as composed
  // (byte for byte, CONTRACT.md), never as the parser re-serialised it.
  if (url.origin + url.pathname !== origin + path) {
    return { ok: false, reason: 'the upstream URL would be sent re-encoded or normalised' };
  }
  return { ok: true, url, origin, path: path + search };
}
