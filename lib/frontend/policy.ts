/**
 * The security headers of every answer the frontend gets on the broker's origin (its
 * pages and its assets). The app runs with the broker's session cookie beside it, so a
 * script injected into it could call the APIs as the user: the policy is strict by
 * default, and the app extends it (BFF_FRONTEND_CSP) with exactly what it needs.
 */
export type CspDirectives = Record<string, string[]>;

/**
 * The default policy (W3C CSP 3). A build such as Vite's, CRA's or Angular's loads its
 * scripts and styles as files from its own origin, so `'self'` is all it needs:
 * - no `'unsafe-inline'` / `'unsafe-eval'`: an injected `<script>` or `onerror=` does not run;
 * - `connect-src 'self'`: the page's fetches (brokerFetch) and WebSockets reach the broker only;
 * - `frame-ancestors 'none'`: the app cannot be framed (clickjacking of a signed-in page);
 * - `base-uri 'none'`, `object-src 'none'`: no `<base>` hijack, no plugins;
 * - `form-action 'self'`: a form cannot post the user's data elsewhere. The sign-out
 *   form's 303 goes on to the provider, so its origin is added at run time (policy.ts callers).
 */
const DEFAULT_POLICY: CspDirectives = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
};

const DIRECTIVE_NAME = /^[a-z][a-z-]*$/;
/** A source expression or token: printable ASCII without the separators `;` and `,` (CSP3 §2.3.1). */
const SOURCE = /^[\x21-\x2b\x2d-\x3a\x3c-\x7e]+$/;

/**
 * BFF_FRONTEND_CSP: `directive source source; directive source`. Returns the directives
 * or a description of the problem (for the configuration's error list).
 */
export function parseCspExtension(value: string): CspDirectives | string {
  const directives: CspDirectives = {};
  for (const part of value.split(';')) {
    const tokens = part.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    const [name, ...sources] = tokens as [string, ...string[]];
    const directive = name.toLowerCase();
    if (!DIRECTIVE_NAME.test(directive)) return `has an invalid directive name: write directives as "connect-src https://api.example.com; img-src data:"`;
    if (!sources.every((source) => SOURCE.test(source))) return `has an invalid source in ${directive}: sources are space-separated, directives separated by ";"`;
    directives[directive] = [...(directives[directive] ?? []), ...sources];
  }
  return directives;
}

/** The default policy with the extension's sources added (a `'none'` is dropped once a source is added). */
export function frontendContentSecurityPolicy(extension: CspDirectives, extra: CspDirectives = {}): string {
  const merged: CspDirectives = {};
  for (const [name, sources] of Object.entries(DEFAULT_POLICY)) merged[name] = [...sources];
  for (const add of [extra, extension]) {
    for (const [name, sources] of Object.entries(add)) {
      const current = (merged[name] ?? []).filter((source) => source !== "'none'" || sources.length === 0);
      merged[name] = [...new Set([...current, ...sources])];
    }
  }
  return Object.entries(merged)
    .map(([name, sources]) => [name, ...sources].join(' '))
    .join('; ');
}

/**
 * The headers for every frontend answer.
 * - `X-Content-Type-Options: nosniff`: an uploaded or mistyped file is never run as a script.
 * - `Referrer-Policy: same-origin`: no URL of the app (a deep link with ids) leaks to
 *   other sites; not `no-referrer`, under which Chromium sends `Origin: null` with the
 *   sign-out form's POST, which /auth/logout rightly refuses.
 * - `X-Frame-Options: DENY`: frame-ancestors for browsers that predate it.
 * - `Cross-Origin-Opener-Policy: same-origin`: a page that opened the app cannot script it.
 * - HSTS only under an https APP_BASE_URL (browsers ignore it over http, RFC 6797 §8.1).
 */
export function securityHeaders(policy: string, https: boolean): Array<[string, string]> {
  const headers: Array<[string, string]> = [
    ['content-security-policy', policy],
    ['x-content-type-options', 'nosniff'],
    ['referrer-policy', 'same-origin'],
    ['x-frame-options', 'DENY'],
    ['cross-origin-opener-policy', 'same-origin'],
  ];
  if (https) headers.push(['strict-transport-security', 'max-age=63072000']);
  return headers;
}
