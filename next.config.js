/**
 * The fallback Content-Security-Policy of the broker's own answers: the callback's error
 * page, every /auth/ answer, Next's not-found page. The demo page at `/` gets a strict,
 * nonce-based policy per request instead (proxy.ts, lib/security/page-policy.ts); this
 * file is read at build time, where no nonce can exist.
 * - `frame-ancestors 'none'`: no page of the broker can be framed (clickjacking).
 * - `object-src 'none'`, `base-uri 'none'`: no plugins, no `<base>` redirecting scripts.
 * - `connect-src 'self'`: the page's fetches reach the broker's origin only.
 * - `script-src 'self' 'unsafe-inline'`: Next's prerendered not-found page carries inline
 *   bootstrap scripts (`self.__next_f.push(...)`) that no nonce or build-time hash can
 *   cover here; no script from any other origin may load.
 * - `style-src 'self' 'unsafe-inline'`: the callback's error page carries its style inline.
 * - no `form-action`: the sign-out form's 303 goes on to the provider's end-session
 *   endpoint, whose origin is known only at run time, and browsers check form-action on
 *   redirects too.
 */
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders = [
  /*
   * This file is read at build time, without APP_BASE_URL, so HSTS cannot depend on it. It
   * need not: browsers ignore Strict-Transport-Security received over http (RFC 6797
   * §8.1), and APP_BASE_URL may be http only on loopback, so the header takes effect
   * exactly when the broker is reached over https. Two years, the host only: whether
   * sibling subdomains are all https is the operator's call (the TLS front end can add
   * includeSubDomains; preload).
   */
  { key: 'Strict-Transport-Security', value: 'max-age=63072000' },
  { key: 'Content-Security-Policy', value: contentSecurityPolicy },
  /*
   * No URL of the broker (a callback with its code and state, a returnTo) leaks to another
   * site. Not `no-referrer`: under it Chromium sends `Origin: null` with the sign-out
   * form's POST, which the same-origin check of /auth/logout rightly refuses (403).
   */
  { key: 'Referrer-Policy', value: 'same-origin' },
  { key: 'X-Content-Type-Options', value: 'nosniff' },
  // frame-ancestors for browsers that predate it.
  { key: 'X-Frame-Options', value: 'DENY' },
];

/** @type {import('next').NextConfig} */
const nextConfig = {
  // The broker never answers with framework fingerprints.
  poweredByHeader: false,
  reactStrictMode: true,
  // oidc-provider is only used by the demo and tests, which run outside Next.
  // openid-client is loaded by Node, not bundled: the provider's discovered Configuration
  // is shared by every route bundle and by instrumentation.ts (lib/oidc/provider.ts keeps
  // it on globalThis), and openid-client checks it with `instanceof` — a bundled copy per
  // bundle would refuse another bundle's Configuration.
  // The OpenTelemetry SDK is loaded by Node when traces are configured (lib/ops/tracing-sdk.ts),
  // one copy per process, never bundled (its `#platform` imports pick Node's build at run time).
  serverExternalPackages: [
    'oidc-provider',
    'openid-client',
    '@opentelemetry/sdk-trace',
    '@opentelemetry/exporter-trace-otlp-http',
    '@opentelemetry/context-async-hooks',
    '@opentelemetry/core',
    '@opentelemetry/resources',
  ],
  async headers() {
    // Every path but /api and /api/...: those answers are the APIs' own, with their own headers.
    return [{ source: '/((?!api/|api$).*)', headers: securityHeaders }];
  },
  experimental: {
    // A request that proxy.ts's matcher selects has its body copied by Next.js before the
    // route runs, up to this many bytes (default 10 MB, in memory, twice). The matcher
    // selects only paths proxy.ts refuses, so their bodies are never needed: keep 1 byte.
    proxyClientMaxBodySize: 1,
  },
};

export default nextConfig;
