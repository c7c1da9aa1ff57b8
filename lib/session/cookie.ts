import type { Config } from '../config/load.ts';
import type { CookieAttributes } from '../http/cookies.ts';

/**
 * Cookie names and attributes. Under https the `__Host-` prefix makes the browser
 * refuse the cookie unless it is Secure, Path=/ and host-only, so a sibling subdomain
 * cannot plant or shadow it (RFC 6265bis §4.1.3.2). The names carry the product name so
 * that an identity provider on another port of the same host (cookies are not
 * port-scoped) cannot shadow them.
 */
export function sessionCookieName(config: Config): string {
  return config.secureCookies ? '__Host-cloakroom' : 'cloakroom';
}

export function transactionCookiePrefix(config: Config): string {
  return config.secureCookies ? '__Host-cloakroom-tx.' : 'cloakroom-tx.';
}

export function sessionCookieAttributes(config: Config, maxAge?: number): CookieAttributes {
  return { path: '/', httpOnly: true, secure: config.secureCookies, sameSite: config.session.sameSite, maxAge };
}

/**
 * Login transaction cookies are SameSite=Lax: the callback is a top-level navigation
 * coming from the provider's site, which a Strict cookie would not accompany.
 */
export function transactionCookieAttributes(config: Config, maxAge?: number): CookieAttributes {
  return { path: '/', httpOnly: true, secure: config.secureCookies, sameSite: 'lax', maxAge };
}
