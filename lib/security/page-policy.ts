/**
 * The strict Content-Security-Policy of the broker's rendered pages (W3C CSP 3; the
 * "strict CSP" of nonces and 'strict-dynamic'). Every response of a page carries a fresh
 * nonce; Next.js reads it from the request's policy while rendering and puts it on each
 * script it emits, its inline bootstrap (`self.__next_f.push(…)`) included. A script
 * injected into the page has no nonce and does not run, whatever its origin.
 *
 * next.config.js sends a static fallback policy on every non-/api path (it is read at
 * build time, where no nonce can exist); this one replaces it on the pages `proxy.ts`
 * renders per request.
 */
export function pageContentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'self'",
    // 'strict-dynamic': the nonced scripts may load Next's chunks; host allow-lists are ignored.
    `script-src 'nonce-${nonce}' 'strict-dynamic'`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** 128 random bits, base64: unguessable for the one response it is used in. */
export function newNonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}
