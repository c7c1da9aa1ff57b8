/**
 * Signs in at the development identity provider without a browser: follows the
 * authorization request's redirects with plain fetch, posts the credentials to the
 * provider's sign-in page, and stops at the redirect back to the client. The provider's
 * cookies (interaction, resume, session) are kept across the hops, as a browser would.
 */

interface StoredCookie {
  name: string;
  value: string;
  host: string;
  path: string;
  expiresAt: number;
}

/**
 * A minimal cookie jar: enough for oidc-provider's host-only, path-scoped cookies.
 * Like browsers, it ignores the port (cookies are not port-scoped).
 */
export class CookieJar {
  readonly #cookies = new Map<string, StoredCookie>();

  store(url: URL, response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie: StoredCookie = {
        name: pair.slice(0, eq).trim(),
        value: pair.slice(eq + 1).trim(),
        host: url.hostname,
        path: defaultPath(url),
        expiresAt: Number.POSITIVE_INFINITY,
      };
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.split('=');
        const value = rest.join('=').trim();
        switch (key.trim().toLowerCase()) {
          case 'path':
            if (value.startsWith('/')) cookie.path = value;
            break;
          case 'max-age':
            cookie.expiresAt = Date.now() + Number(value) * 1000;
            break;
          case 'expires':
            if (cookie.expiresAt === Number.POSITIVE_INFINITY) cookie.expiresAt = Date.parse(value);
            break;
        }
      }
      const key = `${cookie.host};${cookie.path};${cookie.name}`;
      if (cookie.expiresAt <= Date.now()) this.#cookies.delete(key);
      else this.#cookies.set(key, cookie);
    }
  }

  header(url: URL): string | undefined {
    const now = Date.now();
    const matching = [...this.#cookies.values()]
      .filter((c) => c.expiresAt > now && c.host === url.hostname && pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  names(): string[] {
    return [...this.#cookies.values()].map((c) => c.name);
  }
}

function defaultPath(url: URL): string {
  const slash = url.pathname.lastIndexOf('/');
  return slash <= 0 ? '/' : url.pathname.slice(0, slash);
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/';
}

/** A fetch that sends and stores the jar's cookies and never follows redirects itself. */
export async function fetchWithJar(jar: CookieJar, url: URL, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const cookie = jar.header(url);
  if (cookie) headers.set('cookie', cookie);
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(url, response);
  return response;
}

const MAX_HOPS = 20;

/**
 * Returns the final redirect to the client (the URL that starts with
 * `expectedRedirectPrefix`, carrying `code`, `state` and `iss` — or `error`), without
 * requesting it. Throws when the credentials are refused or the flow ends elsewhere.
 * Pass `options.jar` to keep the provider's session cookie for later requests (logout).
 */
export async function authorizeWithoutBrowser(
  authorizationUrl: string,
  creds: { username: string; password: string },
  expectedRedirectPrefix: string,
  options: { jar?: CookieJar } = {},
): Promise<URL> {
  const jar = options.jar ?? new CookieJar();
  let url = new URL(authorizationUrl);
  let signedIn = false;

  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    if (url.href.startsWith(expectedRedirectPrefix)) return url;

    const response = await fetchWithJar(jar, url, { headers: { accept: 'text/html' } });
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      url = new URL(location, url);
      continue;
    }

    const body = await response.text();
    if (response.status === 200 && /^\/interaction\/[^/]+$/.test(url.pathname) && body.includes('name="password"')) {
      if (signedIn) throw new Error('the provider asked for the credentials a second time');
      signedIn = true;
      // The form posts back to the page's own address.
      const answer = await fetchWithJar(jar, url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
        body: new URLSearchParams({ username: creds.username, password: creds.password }),
      });
      const next = answer.headers.get('location');
      if (answer.status >= 300 && answer.status < 400 && next) {
        await answer.body?.cancel();
        url = new URL(next, url);
        continue;
      }
      await answer.body?.cancel();
      throw new Error(`sign-in as ${creds.username} refused: HTTP ${answer.status}`);
    }

    const text = body.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    throw new Error(`authorization stopped at ${url.origin}${url.pathname} with HTTP ${response.status}: ${text.slice(0, 300)}`);
  }
  throw new Error(`more than ${MAX_HOPS} redirects before reaching ${expectedRedirectPrefix}`);
}
