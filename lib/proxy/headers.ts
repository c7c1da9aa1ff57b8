/**
 * Header hygiene for the proxy, both directions, in one place (CONTRACT.md: "The
 * browser's `Cookie`, `Authorization`, hop-by-hop and `Connection`-named headers never
 * reach the API; the API's `Set-Cookie` never reaches the browser").
 *
 * Towards the API the browser's headers are copied except those that carry the
 * browser's credentials, describe the browser's connection, claim to come from a proxy,
 * or are read by Next.js itself. Then the broker sets the forwarding headers from its
 * configuration and the bearer token. Towards the browser the API's headers are copied
 * except those that would act on the broker's own origin or connection.
 *
 * Names are compared in lower case: header names are case-insensitive (RFC 9110 §5.1).
 */

/**
 * Hop-by-hop headers: they describe one connection, not the message. RFC 9110 §7.6.1
 * tells an intermediary to remove `Connection`, every header it names, and "Proxy-
 * Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade"; `Trailer` completes RFC 2616
 * §13.5.1's list and `HTTP2-Settings` is connection-specific (RFC 7540 §3.2.1). Passing
 * `Transfer-Encoding` or `Connection: close` through would desynchronise the next hop's
 * parser (request smuggling).
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * Request headers that never reach the API, by exact name.
 * - `cookie`: the broker's session cookie — the sealed tokens — is for the broker only.
 * - `authorization`: only the broker's bearer token may authenticate to the API; a
 *   browser-supplied one would be a confused deputy.
 * - `forwarded` (RFC 7239) and the de-facto client-IP headers: an API that trusts them
 *   for rate limits or allow-lists would trust whatever the browser wrote. The broker
 *   sets `X-Forwarded-*` itself, from configuration.
 * - method and URL override headers: an upstream that honours `X-HTTP-Method-Override`
 *   or `X-Original-URL` would let a call slip past the route's `methods` and path checks.
 * - `host`: the HTTP client sets it from the upstream URL; `content-length`: the client
 *   sets it (or chunks) from the body it actually streams, so a wrong one cannot
 *   desynchronise the API's parser; `expect`: undici refuses `100-continue`.
 * - `x-csrf`: the broker's anti-forgery header, meaningless to the API.
 * - `rsc`: a Next.js-internal request header (see the prefixes below).
 */
export const REQUEST_HEADERS_NEVER_FORWARDED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  'cookie',
  'authorization',
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'client-ip',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-original-url',
  'x-rewrite-url',
  'host',
  'content-length',
  'expect',
  'x-csrf',
  'rsc',
]);

/**
 * Request headers that never reach the API, by prefix.
 * - `proxy-*`: credentials and instructions for a proxy (`Proxy-Authorization`), not the API.
 * - `x-forwarded-*`: set by the broker from configuration, never copied from the browser.
 * - `next-*`, `x-middleware-*`, `x-nextjs-*`, `x-next-*`, `x-invoke-*`: framework-internal.
 *   Next.js trusted a client-sent `x-middleware-subrequest` to skip middleware
 *   (CVE-2025-29927); the API behind us may be a Next.js app too.
 * - `x-cloakroom-*`: the broker's own namespace; nothing outside may speak in it.
 */
export const REQUEST_HEADER_PREFIXES_NEVER_FORWARDED: ReadonlySet<string> = new Set([
  'proxy-',
  'x-forwarded-',
  'next-',
  'x-middleware-',
  'x-nextjs-',
  'x-next-',
  'x-invoke-',
  'x-cloakroom-',
]);

/**
 * Response headers that never reach the browser, by exact name.
 * - `set-cookie`, `set-cookie2`: the API's cookies would land on the broker's origin,
 *   beside (or over) the session cookie.
 * - `alt-svc` (RFC 7838): the API's alternative services describe the API's connection;
 *   relayed, they would redirect the browser's connections to the broker's origin.
 * - `content-length` is kept: the body is streamed through byte for byte.
 */
export const RESPONSE_HEADERS_NEVER_RETURNED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  'set-cookie',
  'set-cookie2',
  'alt-svc',
]);

/**
 * Response headers that never reach the browser, by prefix.
 * - `x-middleware-*`, `x-nextjs-*`, `x-next-*`: read by Next.js from a route's answer
 *   (`x-middleware-rewrite`, `x-middleware-set-cookie`...): an API must not steer the broker.
 * - `proxy-*`: `Proxy-Authenticate` challenges a proxy the browser did not talk to.
 * - `access-control-*`: a BFF API is same-origin; an upstream's CORS grant (often a
 *   reflected `Origin` with credentials) would otherwise extend to the broker's
 *   cookie-authenticated origin and let other sites read the answers.
 */
export const RESPONSE_HEADER_PREFIXES_NEVER_RETURNED: ReadonlySet<string> = new Set([
  'x-middleware-',
  'x-nextjs-',
  'x-next-',
  'proxy-',
  'access-control-',
]);

/** Headers set by the broker towards the API, from configuration (never from the request). */
export type UpstreamHeaderOptions = {
  /** The access token for this route; absent for `auth: none` or without a session. */
  accessToken?: string;
  /** `X-Forwarded-Proto`: the scheme of APP_BASE_URL. */
  forwardedProto: string;
  /** `X-Forwarded-Host`: the host of APP_BASE_URL. */
  forwardedHost: string;
  /** `X-Forwarded-For`: the client address as the broker determined it, if it did. */
  clientIp?: string;
};

function hasPrefix(name: string, prefixes: ReadonlySet<string>): boolean {
  for (const prefix of prefixes) if (name.startsWith(prefix)) return true;
  return false;
}

/**
 * The names listed in `Connection` values (RFC 9110 §7.6.1: a sender lists there the
 * headers meant for this hop only; a proxy "MUST" remove them). `Connection: x-secret`
 * therefore hides `X-Secret` from the next hop, whatever its name.
 */
function connectionNamed(values: ReadonlyArray<string | undefined>): Set<string> {
  const names = new Set<string>();
  for (const value of values) {
    if (value === undefined) continue;
    for (const name of value.split(',')) {
      const trimmed = name.trim().toLowerCase();
      if (trimmed !== '') names.add(trimmed);
    }
  }
  return names;
}

/** The browser's request headers as the API may see them, plus the broker's own. */
export function headersForUpstream(incoming: Headers, options: UpstreamHeaderOptions): Headers {
  const named = connectionNamed([incoming.get('connection') ?? undefined]);
  const outgoing = new Headers();
  for (const [name, value] of incoming) {
    // Fetch `Headers` yields lower-case names, combined values, and set-cookie singly.
    if (REQUEST_HEADERS_NEVER_FORWARDED.has(name)) continue;
    if (hasPrefix(name, REQUEST_HEADER_PREFIXES_NEVER_FORWARDED)) continue;
    if (named.has(name)) continue;
    outgoing.append(name, value);
  }
  outgoing.set('x-forwarded-proto', options.forwardedProto);
  outgoing.set('x-forwarded-host', options.forwardedHost);
  if (options.clientIp !== undefined) outgoing.set('x-forwarded-for', options.clientIp);
  if (options.accessToken !== undefined) outgoing.set('authorization', `Bearer ${options.accessToken}`);
  return outgoing;
}

/** Response headers as a Fetch `Headers` or as undici's `request()` returns them. */
export type UpstreamResponseHeaders = Headers | Record<string, string | string[] | undefined>;

/**
 * A Fetch `Headers` by shape, not `instanceof`: the `undici` package and Node's built-in
 * fetch each have their own `Headers` class.
 */
function isFetchHeaders(headers: UpstreamResponseHeaders): headers is Headers {
  return typeof headers.entries === 'function' && typeof headers.get === 'function';
}

/** [lower-case name, value] pairs, one per value, from either shape. */
function entriesOf(headers: UpstreamResponseHeaders): Array<[string, string]> {
  if (isFetchHeaders(headers)) return [...headers.entries()];
  const entries: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) entries.push([name.toLowerCase(), item]);
  }
  return entries;
}

/** The API's response headers as the browser may see them. */
export function headersForBrowser(upstream: UpstreamResponseHeaders, options: { authenticated: boolean }): Headers {
  const entries = entriesOf(upstream);
  const named = connectionNamed(entries.filter(([name]) => name === 'connection').map(([, value]) => value));
  const outgoing = new Headers();
  for (const [name, value] of entries) {
    if (RESPONSE_HEADERS_NEVER_RETURNED.has(name)) continue;
    if (hasPrefix(name, RESPONSE_HEADER_PREFIXES_NEVER_RETURNED)) continue;
    if (named.has(name)) continue;
    try {
      outgoing.append(name, value);
    } catch {
      // A name or value `Headers` refuses (a raw CR/LF from a hand-built record) is
      // dropped rather than failing the whole answer; it could not be sent anyway.
    }
  }
  // An answer obtained with the user's token is private to that user: without explicit
  // caching instructions from the API, shared caches must not keep it (RFC 9111 §5.2.2.5).
  if (options.authenticated && !outgoing.has('cache-control')) outgoing.set('cache-control', 'no-store');
  return outgoing;
}
