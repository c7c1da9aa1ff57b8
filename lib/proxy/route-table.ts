/**
 * The route table (CONTRACT.md, "Route table"): which `/api/...` prefix goes to which
 * upstream, with which token. Validated once at start; every problem is reported at
 * once, as a sentence that names the route, the field and the fix, so that an operator
 * fixes a bad table in one round instead of one error per restart.
 */
import { z } from 'zod';
import { neverForwardedReason, REQUEST_HEADERS_FORWARDED } from './headers.ts';

export type AuthMode = 'required' | 'optional' | 'none';

/** One validated route. Frozen: a route is configuration, shared by every request. */
export type Route = Readonly<{
  /** The URL prefix under `/api`, e.g. `/api/orders`; matched at a segment boundary. */
  path: string;
  /** The base the remainder is appended to; no query, fragment, userinfo or trailing slash. */
  upstream: URL;
  /** `required`: 401 without a session. `optional`: a token when there is a session. `none`: never a token. */
  auth: AuthMode;
  /** The methods the route accepts; others are answered 405. */
  methods: ReadonlySet<string>;
  /** RFC 8707 resource indicator for this API's tokens (its audience), if it has its own. */
  resource: string | undefined;
  /** Scopes this API needs; requested at sign-in together with OIDC_SCOPES. */
  scopes: readonly string[];
  /**
   * The deadline of one upstream exchange, in milliseconds: queueing for a pooled
   * connection, connecting and the answer's headers together (then 504
   * `upstream_timeout`); afterwards, the longest gap allowed between two chunks of the
   * body, on either side — the API sending the next, or the browser taking it.
   */
  timeoutMs: number;
  /** Extra browser request headers this API receives (lower case), beyond the built-in allow-list. */
  forwardHeaders: ReadonlySet<string>;
  /** Answers are long-lived streams (server-sent events, long downloads): they use their own connection pool. */
  streaming: boolean;
  /** Upstream exchanges in flight on this route at once, all users together; beyond: 429 `rate_limited`. */
  maxConcurrent: number;
  /** Upstream exchanges in flight on this route at once for one session; beyond: 429 `rate_limited`. */
  maxConcurrentPerSession: number;
  /**
   * Default false. True: WebSocket upgrades are accepted on this route (lib/proxy/
   * websocket.ts), with the same Origin and session rules as its API calls and the
   * access token on the upstream handshake. An open socket counts as one exchange
   * towards `maxConcurrent`/`maxConcurrentPerSession` for as long as it is open.
   */
  websocket: boolean;
  /**
   * RFC 8693 token exchange: the API receives a token exchanged for exactly this
   * audience and scope (lib/tokens/exchange.ts), never the sign-in's own token, so a
   * token leaked from this API's logs is good for this API and these scopes only.
   */
  exchange: Readonly<{ audience: string; scope: string }> | undefined;
  /**
   * Default false. True (RFC 9449): the API gets a DPoP-bound token (`Authorization: DPoP`)
   * and a fresh proof of the session's key for the upstream URL on every request
   * (lib/proxy/dpop.ts). Not combinable with `websocket` (browsers' upgrade requests
   * would need a proof per reconnect; refused at start).
   */
  dpop: boolean;
}>;

/** What the route table's validation needs from the rest of the configuration. */
export interface RouteTableOptions {
  /** BFF_ALLOW_INSECURE_UPSTREAM: `http:` upstreams may receive tokens although not on loopback. */
  allowInsecureUpstream?: boolean;
}

export type RouteTableResult = { ok: true; routes: Route[] } | { ok: false; problems: string[] };

/** Default of `methods`: every method a browser API call uses. */
export const DEFAULT_METHODS: readonly string[] = Object.freeze([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
]);

/**
 * Methods a route may never allow. TRACE (and IIS's TRACK) makes the server echo the
 * request it received back in the body — including the `Authorization: Bearer` header
 * the broker adds — which would hand the access token to the browser, the one thing a
 * BFF exists to prevent (cross-site tracing). CONNECT asks for a tunnel, not a resource.
 */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(['TRACE', 'TRACK', 'CONNECT']);

/** Default of `timeoutMs`. */
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_MS = 600_000;

/**
 * Defaults of `maxConcurrent` and `maxConcurrentPerSession`. The pool of ordinary
 * answers holds 128 connections per upstream origin: one route alone cannot take all of
 * them. One session cannot take a route's whole share, while a dashboard that fires
 * fifty calls at once over HTTP/2 (100 streams per connection) is still served.
 */
const DEFAULT_MAX_CONCURRENT = 100;
const DEFAULT_MAX_CONCURRENT_PER_SESSION = 64;
const MAX_CONCURRENT_LIMIT = 100_000;

const FIELDS = [
  'path', 'upstream', 'auth', 'methods', 'resource', 'scopes', 'timeoutMs',
  'forwardHeaders', 'streaming', 'maxConcurrent', 'maxConcurrentPerSession', 'websocket', 'exchange', 'dpop',
] as const;

/** RFC 9110 §5.1 field-name: a token. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A whole number field with a range, and its message. */
function boundedInteger(what: string, min: number, max: number, fallback: number) {
  const message = (issue: { input?: unknown }) => `must be a whole number of ${what} between ${min} and ${max}, got ${shown(issue.input)}`;
  return z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message }).default(fallback);
}

/** A short, quoted rendering of a bad value for a message (long strings are cut). */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') {
    const cut = value.length > 80 ? `${value.slice(0, 80)}…` : value;
    return JSON.stringify(cut);
  }
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * A URL for an error message: configuration problems end up in logs, so userinfo and
 * query (which may hold an API key) are masked.
 */
function shownUrl(raw: string): string {
  return shown(
    raw
      .replace(/^([a-z][a-z0-9+.-]*:\/*)[^/?#]*@/i, '$1***@')
      .replace(/\?[^#]*/, (query) => (query.length > 1 ? '?…' : query))
      .replace(/#.*/s, (fragment) => (fragment.length > 1 ? '#…' : fragment)),
  );
}

/**
 * RFC 3986 `pchar` without percent-encoding, plus `/` (and `%`, `\`, which have their
 * own message). The WHATWG URL serializer never percent-encodes these in a path, so a
 * route path compares directly with the raw, still-encoded request pathname.
 */
const PATH_CHARACTER_OR_REPORTED = /[A-Za-z0-9\-._~!$&'()*+,;=:@/%\\]/g;

function pathProblems(path: string): string[] {
  const problems: string[] = [];
  if (path !== '/api' && !path.startsWith('/api/')) {
    problems.push(`must be "/api" or start with "/api/" (only /api/... is proxied), got ${shown(path)}`);
  }
  if (path.length > 1 && path.endsWith('/')) {
    problems.push(`must not end with "/": write ${shown(path.replace(/\/+$/, ''))} (a route matches everything below its path)`);
  }
  if (path.includes('//')) problems.push(`must not contain an empty segment "//", got ${shown(path)}`);
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    problems.push(`must not contain "." or ".." segments, got ${shown(path)}`);
  }
  const segments = path.split('/');
  if (segments.some((segment) => segment !== '.' && segment !== '..' && (segment.endsWith('.') || segment.includes(';')))) {
    // Servers that drop trailing dots or `;` parameters would read such a route's path
    // as another one, and the shadow check (L4) would refuse every request to it.
    problems.push(`must not have a segment ending in "." or holding ";", got ${shown(path)}`);
  }
  if (path.includes('%') || path.includes('\\')) {
    // Requests are matched on their raw, encoded path; an encoded prefix would match
    // differently from what the upstream decodes, and '\' is a '/' to browsers.
    problems.push(`must not contain "%" or "\\": write the path with plain characters, got ${shown(path)}`);
  }
  const others = [...new Set(path.replace(PATH_CHARACTER_OR_REPORTED, ''))];
  if (others.length > 0) {
    problems.push(
      `may only contain letters, digits, "/" and -._~!$&'()*+,;=:@, found ${others.map((c) => JSON.stringify(c)).join(', ')}`,
    );
  }
  return problems;
}

/** C0 controls, DEL and whitespace: the URL parser silently strips or re-encodes them. */
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u00a0\u2028\u2029]/;

function parseUpstream(raw: string, ctx: z.RefinementCtx): URL {
  const fail = (message: string): URL => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  const example = 'e.g. "https://orders.internal/v1"';
  if (CONTROL_OR_SPACE.test(raw)) return fail(`must not contain spaces or control characters, got ${shownUrl(raw)}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(`must be an absolute http(s) URL (${example}), got ${shownUrl(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail(`must be an absolute http(s) URL (${example}), got ${shownUrl(raw)}`);
  }
  const problems: string[] = [];
  // Credentials in the URL would be sent on every call and printed in every log line.
  if (url.username !== '' || url.password !== '' || /^[a-z][a-z0-9+.-]*:\/*[^/?#]*@/i.test(raw)) {
    problems.push(`must not contain credentials (user:password@), got ${shownUrl(raw)}`);
  }
  // The request's own query is appended; a base query or fragment has no sane merge.
  if (raw.includes('?')) problems.push(`must not contain a query ("?..."): the request's query is appended, got ${shownUrl(raw)}`);
  if (raw.includes('#')) problems.push(`must not contain a fragment ("#..."), got ${shownUrl(raw)}`);
  const basePath = url.pathname.replace(/\/+$/, '');
  if (basePath.includes('//')) problems.push(`must not contain an empty path segment "//", got ${shownUrl(raw)}`);
  for (const message of problems) ctx.addIssue({ code: 'custom', message });
  if (problems.length > 0) return z.NEVER;
  // Normalised: "https://h/v1/" and "https://h/v1" are the same base, so that
  // base + "/a" never produces "/v1//a".
  const normalised = new URL(url.origin);
  normalised.pathname = basePath === '' ? '/' : basePath;
  return normalised;
}

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** RFC 9110 §5.6.2 token, upper-case only: methods are case-sensitive (RFC 9110 §9.1). */
const UPPER_CASE_TOKEN = /^[A-Z][A-Z0-9!#$%&'*+\-.^_`|~]*$/;

/**
 * `"exchange": {"audience": "...", "scope": "..."}`. The audience is what RFC 8693 §2.1
 * calls the logical name of the target service (a URI or a plain name); the scope is one
 * or more RFC 6749 §3.3 scope-tokens separated by single spaces. Both are sent to the
 * provider verbatim, so neither may hold spaces at the ends, control characters or be empty.
 */
const exchangeSchema = z.strictObject(
  {
    audience: z
      .string({ error: (issue) => `must be a string naming the API, e.g. "https://orders.internal/", got ${shown(issue.input)}` })
      .refine((value) => value.length > 0 && value.length <= 2048 && !CONTROL_OR_SPACE.test(value), {
        error: (issue) => `must be a non-empty audience without spaces or control characters (RFC 8693 §2.1), got ${shown(issue.input)}`,
      }),
    scope: z
      .string({ error: (issue) => `must be a space-separated scope string like "orders:read", got ${shown(issue.input)}` })
      .refine((value) => value.split(' ').every((token) => SCOPE_TOKEN.test(token)), {
        error: (issue) => `must be scope-tokens separated by single spaces (RFC 6749 §3.3), without quotes or backslashes, got ${shown(issue.input)}`,
      }),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: the fields are audience, scope`
        : `must be an object like {"audience": "https://orders.internal/", "scope": "orders:read"}, got ${shown(issue.input)}`,
  },
);

const routeSchema = z.strictObject(
  {
    path: z
      .string({
        error: (issue) =>
          issue.input === undefined
            ? 'is required: the URL prefix to proxy, e.g. "/api/orders"'
            : `must be a string like "/api/orders", got ${shown(issue.input)}`,
      })
      .superRefine((path, ctx) => {
        for (const message of pathProblems(path)) ctx.addIssue({ code: 'custom', message });
      }),
    upstream: z
      .string({
        error: (issue) =>
          issue.input === undefined
            ? 'is required: the base URL of the API, e.g. "https://orders.internal/v1"'
            : `must be a string URL like "https://orders.internal/v1", got ${shown(issue.input)}`,
      })
      .transform(parseUpstream),
    auth: z
      .enum(['required', 'optional', 'none'], {
        error: (issue) => `must be "required", "optional" or "none", got ${shown(issue.input)}`,
      })
      .default('required'),
    methods: z
      .array(
        z
          .string({ error: (issue) => `must be a method name like "GET", got ${shown(issue.input)}` })
          .superRefine((method, ctx) => {
            if (UPPER_CASE_TOKEN.test(method)) {
              if (FORBIDDEN_METHODS.has(method)) {
                ctx.addIssue({
                  code: 'custom',
                  message: `${method} may not be proxied: its echo of the request would show the access token to the browser`,
                });
              }
            } else if (UPPER_CASE_TOKEN.test(method.toUpperCase())) {
              ctx.addIssue({ code: 'custom', message: `must be upper case (methods are case-sensitive): write ${shown(method.toUpperCase())}, got ${shown(method)}` });
            } else {
              ctx.addIssue({ code: 'custom', message: `must be an HTTP method name like "GET", got ${shown(method)}` });
            }
          }),
        { error: (issue) => `must be an array of method names like ["GET", "POST"], got ${shown(issue.input)}` },
      )
      .min(1, { error: 'must list at least one method, e.g. ["GET"]; leave it out to allow all' })
      .default([...DEFAULT_METHODS]),
    resource: z
      .string({ error: (issue) => `must be a string URL like "https://orders.internal/", got ${shown(issue.input)}` })
      .superRefine((resource, ctx) => {
        // RFC 8707 §2: "an absolute URI ... MUST NOT include a fragment component".
        let ok = !CONTROL_OR_SPACE.test(resource);
        try {
          new URL(resource);
        } catch {
          ok = false;
        }
        if (!ok) {
          ctx.addIssue({ code: 'custom', message: `must be an absolute URI (RFC 8707 §2) like "https://orders.internal/", got ${shownUrl(resource)}` });
        } else if (resource.includes('#')) {
          ctx.addIssue({ code: 'custom', message: `must not contain a fragment (RFC 8707 §2), got ${shownUrl(resource)}` });
        }
      })
      .optional(),
    scopes: z
      .array(
        z
          .string({ error: (issue) => `must be a scope string like "orders:read", got ${shown(issue.input)}` })
          .regex(SCOPE_TOKEN, {
            error: (issue) =>
              `must be one scope without spaces, quotes or backslashes (RFC 6749 §3.3), got ${shown(issue.input)}`,
          }),
        { error: (issue) => `must be an array of scope strings like ["orders:read"], got ${shown(issue.input)}` },
      )
      .default([]),
    timeoutMs: z
      .number({ error: (issue) => `must be a number of milliseconds, got ${shown(issue.input)}` })
      .int({ error: (issue) => `must be a whole number of milliseconds, got ${shown(issue.input)}` })
      .min(1, { error: (issue) => `must be between 1 and ${MAX_TIMEOUT_MS} milliseconds, got ${shown(issue.input)}` })
      .max(MAX_TIMEOUT_MS, { error: (issue) => `must be between 1 and ${MAX_TIMEOUT_MS} milliseconds, got ${shown(issue.input)}` })
      .default(DEFAULT_TIMEOUT_MS),
    forwardHeaders: z
      .array(
        z
          .string({ error: (issue) => `must be a header name like "x-tenant", got ${shown(issue.input)}` })
          .superRefine((name, ctx) => {
            if (!HEADER_NAME.test(name)) {
              ctx.addIssue({ code: 'custom', message: `must be a header name (letters, digits, -), got ${shown(name)}` });
              return;
            }
            const why = neverForwardedReason(name.toLowerCase());
            if (why) ctx.addIssue({ code: 'custom', message: `${shown(name)} may never be forwarded: ${why}; remove it` });
          }),
        { error: (issue) => `must be an array of header names like ["x-tenant"], got ${shown(issue.input)}` },
      )
      .default([]),
    streaming: z.boolean({ error: (issue) => `must be true or false, got ${shown(issue.input)}` }).default(false),
    maxConcurrent: boundedInteger('requests', 1, MAX_CONCURRENT_LIMIT, DEFAULT_MAX_CONCURRENT),
    maxConcurrentPerSession: boundedInteger('requests', 1, MAX_CONCURRENT_LIMIT, DEFAULT_MAX_CONCURRENT_PER_SESSION),
    websocket: z.boolean({ error: (issue) => `must be true or false, got ${shown(issue.input)}` }).default(false),
    exchange: exchangeSchema.optional(),
    dpop: z.boolean({ error: (issue) => `must be true or false, got ${shown(issue.input)}` }).default(false),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: the fields are ${FIELDS.join(', ')}`
        : `must be an object like {"path": "/api/orders", "upstream": "https://orders.internal/v1"}, got ${shown(issue.input)}`,
  },
);

/** Loopback hosts: traffic to them never leaves the machine. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]';
}

/**
 * L5: a route that attaches the user's bearer token to an `http:` upstream off the
 * machine sends it in cleartext to anyone on the path (RFC 6750 §5.3: bearer tokens need
 * TLS). Refused unless the operator says the network is trusted. The message names the
 * route, not the URL (configuration problems end up in logs).
 */
function cleartextTokenProblem(path: string, upstream: URL, auth: AuthMode, options: RouteTableOptions): string | undefined {
  if (upstream.protocol !== 'http:' || auth === 'none' || isLoopback(upstream.hostname) || options.allowInsecureUpstream) return undefined;
  return (
    `the route ${shown(path)} (auth "${auth}") would send users' access tokens over cleartext http to a host that is not loopback: ` +
    'use an https upstream, or set BFF_ALLOW_INSECURE_UPSTREAM=true if the network to it is trusted'
  );
}

/** `route[2].methods[0]` */
function fieldName(index: number, path: readonly PropertyKey[]): string {
  let name = `route[${index}]`;
  for (const key of path) name += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  return name;
}

/**
 * Validates a route table (the parsed JSON of `BFF_ROUTES` / `BFF_ROUTES_FILE`). The
 * routes come back longest path first: `matchRoute` relies on that order.
 */
export function parseRouteTable(input: unknown, options: RouteTableOptions = {}): RouteTableResult {
  if (!Array.isArray(input)) {
    return { ok: false, problems: [`must be a JSON array of routes like [{"path": "/api/orders", "upstream": "https://orders.internal/v1"}], got ${shown(input)}`] };
  }
  const problems: string[] = [];
  const routes: Route[] = [];
  const firstIndexOfPath = new Map<string, number>();

  input.forEach((entry: unknown, index) => {
    const result = routeSchema.safeParse(entry);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push(`${fieldName(index, issue.path)}: ${issue.message}`);
    } else {
      const { path, upstream, auth, methods, resource, scopes, timeoutMs, forwardHeaders, streaming, maxConcurrent, maxConcurrentPerSession, websocket, exchange, dpop } = result.data;
      if (dpop && auth === 'none') problems.push(`route[${index}].dpop: the route "${path}" has auth "none": a DPoP proof needs a session's token; set auth "required" or remove "dpop"`);
      if (dpop && websocket) problems.push(`route[${index}].dpop: the route "${path}" has "websocket": true and "dpop": true, which are not supported together (the upgrade would need a proof per handshake); use a separate route for the WebSocket`);
      if (dpop && exchange) problems.push(`route[${index}].dpop: the route "${path}" has both "dpop" and "exchange": an exchanged token is not bound to the session's key; choose one`);
      const cleartext = cleartextTokenProblem(path, upstream, auth, options);
      if (cleartext) problems.push(`route[${index}].upstream: ${cleartext}`);
      if (exchange && auth === 'none') {
        problems.push(`route[${index}].exchange: the route ${shown(path)} has auth "none", so there is no session token to exchange: remove "exchange" or set auth "required"`);
      }
      routes.push(
        Object.freeze({
          path,
          upstream,
          auth,
          methods: new Set(methods),
          resource,
          scopes: Object.freeze([...scopes]),
          timeoutMs,
          // The built-in allow-list needs no repeating; kept lower case for the per-request lookup.
          forwardHeaders: new Set(forwardHeaders.map((name) => name.toLowerCase()).filter((name) => !REQUEST_HEADERS_FORWARDED.has(name))),
          streaming,
          maxConcurrent,
          maxConcurrentPerSession: Math.min(maxConcurrentPerSession, maxConcurrent),
          websocket,
          exchange: exchange ? Object.freeze({ audience: exchange.audience, scope: exchange.scope }) : undefined,
          dpop,
        }),
      );
    }
    // Checked on every entry with a string path, valid or not, so that all problems show at once.
    const path = (entry as { path?: unknown } | null)?.path;
    if (typeof path === 'string') {
      // Compared case-folded: servers that route case-insensitively see one path (L4),
      // and `shadowsLongerRoute` would then refuse every request to both.
      const first = firstIndexOfPath.get(path.toLowerCase());
      if (first === undefined) firstIndexOfPath.set(path.toLowerCase(), index);
      else problems.push(`route[${index}].path: ${shown(path)} is already the path of route[${first}] (paths are compared ignoring letter case); each path may appear only once`);
    }
  });

  if (problems.length > 0) return { ok: false, problems };
  // Longest first, so the first match in matchRoute is the longest prefix. Paths are
  // distinct, so equal lengths never match the same request.
  routes.sort((a, b) => b.path.length - a.path.length);
  return { ok: true, routes };
}

/**
 * The route for a request path: the longest route `path` that equals `pathname` or is
 * followed in it by `/` (segment boundary: `/api/orders` never matches `/api/ordersx`).
 * `pathname` is the raw, still percent-encoded path of the request URL; `remainder` is
 * the rest of it, with its leading `/`, or `''`. `routes` must be in the order
 * `parseRouteTable` returns them. This runs on every API call: no allocation but the
 * remainder.
 */
export function matchRoute(routes: readonly Route[], pathname: string): { route: Route; remainder: string } | undefined {
  for (const route of routes) {
    const length = route.path.length;
    if (pathname.startsWith(route.path) && (pathname.length === length || pathname.charCodeAt(length) === 0x2f)) {
      return { route, remainder: pathname.slice(length) };
    }
  }
  return undefined;
}

/**
 * A request path as a lenient upstream server may read it, for the shadow check (L4):
 * each segment percent-decoded (`%3B` is `;`, `%20` a space), path parameters dropped
 * (`;x`, as Tomcat and Spring do), trailing dots and spaces dropped (IIS and Windows),
 * and case-folded (Express and ASP.NET Core route case-insensitively). Undecodable
 * segments are kept raw: the path checks refuse them anyway.
 */
function leniently(pathname: string): string {
  return pathname
    .split('/')
    .map((segment) => {
      let decoded = segment;
      if (segment.includes('%')) {
        try {
          decoded = decodeURIComponent(segment);
        } catch {
          // kept raw
        }
      }
      return (decoded.split(';', 1)[0] as string).replace(/[. ]+$/, '').toLowerCase();
    })
    .join('/');
}

/** `matchRoute` on case-folded route paths, for paths already passed through `leniently`. */
function matchLeniently(routes: readonly Route[], folded: string): Route | undefined {
  for (const route of routes) {
    const prefix = route.path.toLowerCase();
    if (folded.startsWith(prefix) && (folded.length === prefix.length || folded.charCodeAt(prefix.length) === 0x2f)) return route;
  }
  return undefined;
}

/**
 * Whether a server that normalises paths more leniently than the broker — dropping `;`
 * path parameters (raw or `%3B`), trailing dots or spaces, or letter case — would read
 * `pathname` as belonging to a route other than `route`: the request would then reach
 * that route's API under `route`'s methods and auth (`/api/ORDERS/x`, `/api/orders./x`,
 * `/api/orders%20/x`, `/api/orders%3Bx/delete` with routes `/api` and `/api/orders`).
 * A path already in its lenient form (the common case) costs one comparison.
 */
export function shadowsLongerRoute(routes: readonly Route[], pathname: string, route: Route): boolean {
  const lenient = leniently(pathname);
  if (lenient === pathname) return false;
  return matchLeniently(routes, lenient) !== route;
}
