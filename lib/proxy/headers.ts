/**
 * Header hygiene for the proxy, both directions, in one place (CONTRACT.md: "The
 * browser's `Cookie`, `Authorization`, hop-by-hop and `Connection`-named headers never
 * reach the API; the API's `Set-Cookie` never reaches the browser").
 *
 * Towards the API the browser's headers pass by ALLOW-LIST: the few an ordinary API
 * needs to understand a request (below), plus a route's own `forwardHeaders`. Anything
 * else — and above all anything that asserts an identity or steers the infrastructure
 * between the broker and the API — stays behind, because an API behind a BFF is often
 * also behind a header-trusting auth proxy or a service mesh, and the browser (or any
 * XSS calling through the broker) must not be able to speak to those in its own voice.
 * The deny-lists are kept for what may never pass even when a route lists it.
 * Towards the browser the API's headers are copied except those that would act on the
 * broker's own origin or connection, and answers obtained with a user's token are made
 * private (RFC 9111).
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
 * The browser's request headers an API receives without configuration: what a JSON or
 * file API needs to answer the request it was asked, and nothing that names a user or
 * steers a proxy.
 */
export const REQUEST_HEADERS_FORWARDED: ReadonlySet<string> = new Set([
  // Content negotiation (RFC 9110 §12.5): which representation to send back.
  'accept',
  'accept-language',
  // The broker streams the answer's bytes through unchanged, so a compressed answer
  // reaches the browser that asked for it.
  'accept-encoding',
  // Conditional requests (RFC 9110 §13): cache revalidation (304) and lost-update
  // protection (412) would silently stop working without them.
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  // Range requests (RFC 9110 §14.2): resumable downloads, media seeking.
  'range',
  // The request body's own description (RFC 9110 §8.3-8.5): without it a body cannot be parsed.
  'content-type',
  'content-language',
  'content-encoding',
  // Integrity of the body (RFC 9530), computed by the app over what it sends.
  'content-digest',
  // The browser's freshness wishes (`no-cache` on a reload) for caches before the API (RFC 9111 §5.2.1).
  'cache-control',
  // RFC 7240 preferences (`return=minimal`, `respond-async`): how to answer, never who asks.
  'prefer',
  // Safe retries of unsafe methods (draft-ietf-httpapi-idempotency-key-header).
  'idempotency-key',
  // Tracing (W3C Trace Context) and log correlation: opaque ids, no authority. `baggage`
  // is left out: its key-values (user ids, tenants) are read by some services as facts.
  'traceparent',
  'tracestate',
  'x-request-id',
  // What the client is, for the API's logs and compatibility switches; not an identity.
  'user-agent',
]);

/**
 * Request headers that never reach the API by exact name, not even when a route lists
 * them in `forwardHeaders`.
 * - `cookie`: the broker's session cookie — the sealed tokens — is for the broker only.
 * - `authorization`: only the broker's bearer token may authenticate to the API; a
 *   browser-supplied one would be a confused deputy.
 * - `forwarded` (RFC 7239) and the de-facto client-IP headers: an API that trusts them
 *   for rate limits or allow-lists would trust whatever the browser wrote. The broker
 *   sets `X-Forwarded-*` itself, from configuration.
 * - method and URL override headers: an upstream that honours `X-HTTP-Method-Override`
 *   or `X-Original-URL` would let a call slip past the route's `methods` and path checks.
 * - identity assertions of auth proxies and platforms (oauth2-proxy's `GAP-Auth`,
 *   Apache's `Remote-User`, Kong's `X-Authenticated-*` and `X-Consumer-*`, Google IAP's
 *   and Cloudflare Access's signed assertions, Google API Gateway's `X-Apigateway-Api-
 *   Userinfo`): an API behind such a proxy believes them as the signed-in user.
 * - mesh and proxy control (`Via`, `X-Host`, gRPC and Envoy timeouts, Linkerd's
 *   destination override): an internal proxy honours them from a trusted neighbour.
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
  // RFC 9449: only the broker proves possession of the session's key; a browser's own
  // proof beside the broker's would make the API's check ambiguous.
  'dpop',
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
  'x-rewrite-url',
  'remote-user',
  'x-remote-user',
  'x-remote-group',
  'x-remote-groups',
  'x-authenticated-user',
  'x-authenticated-userid',
  'x-authenticated-groups',
  'x-authenticated-scope',
  'x-credential-identifier',
  'x-userinfo',
  'x-user',
  'x-user-id',
  'x-email',
  'x-id-token',
  'x-access-token',
  'x-jwt-assertion',
  'gap-auth',
  'x-goog-iap-jwt-assertion',
  'x-apigateway-api-userinfo',
  'x-endpoint-api-userinfo',
  'cf-access-jwt-assertion',
  'cf-access-authenticated-user-email',
  'ssl-client-cert',
  'x-ssl-client-cert',
  'x-client-cert',
  'x-client-dn',
  'x-ssl-client-dn',
  'via',
  'x-host',
  'grpc-timeout',
  'max-forwards',
  'host',
  'content-length',
  'expect',
  'x-csrf',
  'rsc',
]);

/**
 * Request headers that never reach the API by prefix, not even when a route lists them.
 * - `proxy-*`: credentials and instructions for a proxy (`Proxy-Authorization`), not the API.
 * - `x-forwarded-*`: set by the broker from configuration, never copied from the browser
 *   (oauth2-proxy's `X-Forwarded-User`/`-Email`/`-Access-Token`, Envoy's `-Client-Cert` too).
 * - identity families: oauth2-proxy `X-Auth-Request-*`, AWS ALB `X-Amzn-Oidc-*`, Azure App
 *   Service `X-Ms-Client-Principal*` and `X-Ms-Token-*`, Google IAP
 *   `X-Goog-Authenticated-User-*`, Kong `X-Consumer-*`, Pomerium `X-Pomerium-*`,
 *   Vouch `X-Vouch-*`, Shibboleth `Shib-*`.
 * - mesh control: Envoy (and Istio) `x-envoy-*` (retries, timeouts, upstream overrides),
 *   `X-Original-*` (URI, host, method — nginx `auth_request`, IIS), Linkerd `l5d-*`.
 * - `next-*`, `x-middleware-*`, `x-nextjs-*`, `x-next-*`, `x-invoke-*`: framework-internal.
 *   Next.js trusted a client-sent `x-middleware-subrequest` to skip middleware
 *   (CVE-2025-29927); the API behind us may be a Next.js app too.
 * - `x-cloakroom-*`: the broker's own namespace; nothing outside may speak in it.
 */
export const REQUEST_HEADER_PREFIXES_NEVER_FORWARDED: ReadonlySet<string> = new Set([
  'proxy-',
  'x-forwarded-',
  'x-auth-request-',
  'x-amzn-oidc-',
  'x-ms-client-principal',
  'x-ms-token-',
  'x-goog-authenticated-user-',
  'x-consumer-',
  'x-pomerium-',
  'x-vouch-',
  'shib-',
  'x-envoy-',
  'x-original-',
  'l5d-',
  'next-',
  'x-middleware-',
  'x-nextjs-',
  'x-next-',
  'x-invoke-',
  'x-cloakroom-',
]);

/** Why a header name may never be forwarded, or undefined: for route-table validation. */
export function neverForwardedReason(lowerName: string): string | undefined {
  if (HOP_BY_HOP_HEADERS.has(lowerName)) return 'it is hop-by-hop (RFC 9110 §7.6.1)';
  if (neverForwarded(lowerName)) {
    return 'it carries credentials or an identity, or steers a proxy, and the broker never lets a browser set it';
  }
  return undefined;
}

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

/**
 * Caching instructions addressed to shared caches and CDNs only, dropped from answers
 * obtained with a user's token. Each would let a cache in front of the broker keep one
 * user's answer under its URL and hand it to the next visitor, because the browser's
 * request carries a `Cookie`, not the `Authorization` that RFC 9111 §3.5 protects.
 * - `cdn-cache-control` (RFC 9213) and the vendor-targeted forms it defines the pattern
 *   for: `vercel-cdn-cache-control`, `cloudflare-cdn-cache-control`, `netlify-cdn-cache-control`.
 * - `surrogate-control` (W3C Edge Architecture; Fastly, Akamai, Varnish setups) and
 *   `edge-control` (Akamai).
 * - `x-accel-expires`: nginx `proxy_cache` lets it override `Cache-Control` entirely.
 * - cache tags for purging (`surrogate-key`, `cache-tag`, `edge-cache-tag`,
 *   `netlify-cache-tag`, `vercel-cache-tag`): meaningful only for an entry a shared
 *   cache keeps, which a private answer must not be; `netlify-vary` keys such an entry.
 */
export const SHARED_CACHE_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'cdn-cache-control',
  'vercel-cdn-cache-control',
  'cloudflare-cdn-cache-control',
  'netlify-cdn-cache-control',
  'surrogate-control',
  'edge-control',
  'x-accel-expires',
  'surrogate-key',
  'cache-tag',
  'edge-cache-tag',
  'netlify-cache-tag',
  'vercel-cache-tag',
  'netlify-vary',
]);

/**
 * `Cache-Control` directives that address shared caches (RFC 9111 §5.2.2): `public`
 * permits storing what would otherwise be refused, `s-maxage` and `proxy-revalidate`
 * speak to shared caches only. A qualified `private="field"` is dropped too: it leaves the
 * rest of the answer storable by shared caches (§5.2.2.7), so an unqualified `private`
 * replaces it.
 */
const SHARED_CACHE_DIRECTIVES: ReadonlySet<string> = new Set(['public', 's-maxage', 'proxy-revalidate', 'private']);

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
  /** The route's `forwardHeaders`, lower case, already checked against the never-lists. */
  forwardHeaders?: ReadonlySet<string>;
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

/** Refused toward the API whatever any list says. */
function neverForwarded(name: string): boolean {
  return REQUEST_HEADERS_NEVER_FORWARDED.has(name) || hasPrefix(name, REQUEST_HEADER_PREFIXES_NEVER_FORWARDED);
}

/** The allow-list less anything the never-lists refuse, computed once (this runs per header of every call). */
const FORWARDED_BY_DEFAULT: ReadonlySet<string> = new Set([...REQUEST_HEADERS_FORWARDED].filter((name) => !neverForwarded(name)));

/** Whether a browser request header may reach the API: allowed, and never refused. */
function forwardable(name: string, routeHeaders: ReadonlySet<string> | undefined): boolean {
  if (FORWARDED_BY_DEFAULT.has(name)) return true;
  // A route's own names are checked again at request time: the never-lists win over any configuration.
  return routeHeaders?.has(name) === true && !neverForwarded(name);
}

/** The browser's request headers as the API may see them, plus the broker's own. */
export function headersForUpstream(incoming: Headers, options: UpstreamHeaderOptions): Headers {
  const named = connectionNamed([incoming.get('connection') ?? undefined]);
  const outgoing = new Headers();
  for (const [name, value] of incoming) {
    // Fetch `Headers` yields lower-case names, combined values, and set-cookie singly.
    if (!forwardable(name, options.forwardHeaders)) continue;
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

/**
 * The items of a comma-separated header list (RFC 9110 §5.6.1), commas inside quoted
 * strings kept (`no-cache="a, b"` is one directive), items trimmed, empty ones dropped.
 */
function listItems(value: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (quoted && c === '\\' && i + 1 < value.length) {
      current += c + (value[i + 1] as string);
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ',' && !quoted) {
      items.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  items.push(current);
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

/**
 * The API's `Cache-Control` for an answer obtained with a user's token: the directives
 * for shared caches removed and `private` added (RFC 9111 §5.2.2.7), everything else the
 * API said — `max-age`, `no-cache`, `no-store`, `must-revalidate`, extensions — kept as
 * written, so the browser's own cache behaves as the API meant. Filtering the items
 * rather than parsing into a typed object keeps unknown extensions byte for byte.
 */
export function privateCacheControl(values: readonly string[]): string {
  if (values.length === 0) return 'no-store';
  const kept = values
    .flatMap(listItems)
    .filter((item) => !SHARED_CACHE_DIRECTIVES.has((item.split('=', 1)[0] as string).trim().toLowerCase()));
  return ['private', ...kept].join(', ');
}

/** `Vary` with `Cookie` added (RFC 9110 §12.5.5): the answer depends on whose session sent it. */
function varyWithCookie(values: readonly string[]): string {
  const items = values.flatMap(listItems);
  if (items.includes('*')) return '*';
  if (!items.some((item) => item.toLowerCase() === 'cookie')) items.push('Cookie');
  return items.join(', ');
}

/** The API's response headers as the browser may see them. */
export function headersForBrowser(upstream: UpstreamResponseHeaders, options: { authenticated: boolean }): Headers {
  const entries = entriesOf(upstream);
  const named = connectionNamed(entries.filter(([name]) => name === 'connection').map(([, value]) => value));
  const outgoing = new Headers();
  const cacheControl: string[] = [];
  const vary: string[] = [];
  for (const [name, value] of entries) {
    if (RESPONSE_HEADERS_NEVER_RETURNED.has(name)) continue;
    if (hasPrefix(name, RESPONSE_HEADER_PREFIXES_NEVER_RETURNED)) continue;
    if (named.has(name)) continue;
    if (options.authenticated) {
      if (SHARED_CACHE_RESPONSE_HEADERS.has(name)) continue;
      // Collected and rewritten below, once, from all their values.
      if (name === 'cache-control') {
        cacheControl.push(value);
        continue;
      }
      if (name === 'vary') {
        vary.push(value);
        continue;
      }
    }
    try {
      outgoing.append(name, value);
    } catch {
      // A name or value `Headers` refuses (a raw CR/LF from a hand-built record) is
      // dropped rather than failing the whole answer; it could not be sent anyway.
    }
  }
  if (options.authenticated) {
    // An answer obtained with the user's token is private to that user (M7): no shared
    // cache in front of the broker may keep it, whatever the API told its own clients.
    safelySet(outgoing, 'cache-control', privateCacheControl(cacheControl));
    safelySet(outgoing, 'vary', varyWithCookie(vary));
  }
  return outgoing;
}

/** Sets a rebuilt value; one `Headers` refuses (a CR/LF from a hand-built record) falls back to the strictest. */
function safelySet(headers: Headers, name: 'cache-control' | 'vary', value: string): void {
  try {
    headers.set(name, value);
  } catch {
    headers.set(name, name === 'cache-control' ? 'private, no-store' : 'Cookie');
  }
}
