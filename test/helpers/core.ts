/**
 * Small helpers for the core integration tests (sign-in, callback, session, logout):
 * reading what the broker sealed into a cookie, inspecting Set-Cookie headers, and
 * stopping a sign-in at the redirect back to the broker.
 */
import { getConfig } from '../../lib/config/load.ts';
import { parseCookies } from '../../lib/http/cookies.ts';
import { readChunked, unseal } from '../../lib/session/codec.ts';
import type { Session } from '../../lib/session/session.ts';
import type { LoginTransaction } from '../../lib/session/transactions.ts';
import { authorizeWithoutBrowser } from './idp-login.ts';
import type { BrowserClient, Stack } from './stack.ts';

/** The session the `Cookie` header carries, unsealed with the current configuration's secrets. */
export async function unsealSession(cookieHeader: string): Promise<Session | undefined> {
  const sealed = readChunked(parseCookies(cookieHeader), 'cloakroom');
  if (!sealed) return undefined;
  const config = getConfig();
  const opened = await unseal<Session>(sealed, config.session, config.session.absoluteTimeout);
  return 'data' in opened ? opened.data : undefined;
}

/** A login transaction cookie's content. */
export async function unsealTransaction(sealed: string): Promise<LoginTransaction | undefined> {
  const opened = await unseal<LoginTransaction>(sealed, getConfig().session, 600);
  return 'data' in opened ? opened.data : undefined;
}

/** Every token value a session holds: what must never reach the browser in readable form. */
export function tokenValues(session: Session): string[] {
  const values = [session.idToken, session.refreshToken, ...Object.values(session.tokens).map((t) => t.value)];
  return values.filter((v): v is string => typeof v === 'string' && v.length > 0);
}

/** The Set-Cookie headers of a response whose cookie name matches. */
export function setCookies(response: Response, name: string | RegExp): string[] {
  return response.headers.getSetCookie().filter((header) => {
    const cookieName = header.slice(0, header.indexOf('='));
    return typeof name === 'string' ? cookieName === name : name.test(cookieName);
  });
}

/** Set-Cookie headers that store a session (a non-empty `cloakroom` or `cloakroom.N`). */
export function sessionCookiesSet(response: Response): string[] {
  return setCookies(response, /^cloakroom(\.\d+)?$/).filter((header) => !/^[^=]+=;/.test(header) && !/; Max-Age=0(;|$)/.test(header));
}

/** The attributes of one Set-Cookie header, keys lower-cased. */
export function cookieAttributes(header: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of header.split(';').slice(1)) {
    const eq = part.indexOf('=');
    const key = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    attributes.set(key, eq === -1 ? '' : part.slice(eq + 1).trim());
  }
  return attributes;
}

/**
 * Starts a sign-in and completes it at the provider, but stops at the redirect back to
 * the broker: the callback URL, not yet requested.
 */
export async function callbackUrl(browser: BrowserClient, username = 'alice', returnTo?: string): Promise<URL> {
  const authorizationUrl = await browser.startLogin(returnTo);
  return authorizeWithoutBrowser(authorizationUrl, { username, password: `${username}-password` }, `${browser.origin}/auth/callback`, {
    jar: browser.jar,
  });
}

/**
 * `GET /auth/session` as the app's JavaScript would call it; the parsed body. With
 * `cookieHeader`, that exact Cookie header is sent instead of the browser's jar (a copied
 * or tampered cookie), and nothing is stored.
 */
export async function sessionOf(browser: BrowserClient, cookieHeader?: string): Promise<Record<string, unknown>> {
  const response =
    cookieHeader === undefined
      ? await browser.api('/auth/session')
      : await fetch(new URL('/auth/session', browser.origin), {
          headers: { cookie: cookieHeader, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' },
          redirect: 'manual',
        });
  if (response.status !== 200) throw new Error(`/auth/session answered ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A new browser holding `from`'s broker cookies but no provider session, so that the
 * next sign-in can be as another user (the provider would otherwise reuse its session).
 */
export function withBrokerCookiesOf(stack: Stack, from: BrowserClient): BrowserClient {
  const to = stack.newBrowser();
  const headers = new Headers();
  for (const part of from.cookieHeader().split('; ')) if (part.startsWith('cloakroom')) headers.append('set-cookie', `${part}; Path=/`);
  to.jar.store(new URL(from.origin), new Response(null, { headers }));
  return to;
}
