/**
 * Signing in without a browser, the two ways the benchmark needs:
 *  - at the broker, as a user would (login → the provider's form → callback), ending with
 *    the broker's session cookie;
 *  - at the provider directly, as a client of its own, for floor 1 and floor 2's fixed
 *    token — never read through the broker.
 */
import * as client from 'openid-client';
import { authorizeWithoutBrowser, CookieJar, fetchWithJar } from '../../test/helpers/idp-login.ts';

export interface Credentials {
  username: string;
  password: string;
}

/** What the app's own JavaScript sends to the broker's API routes. */
export const BROWSER_API_HEADERS = { 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } as const;

/**
 * A complete sign-in at the broker, then one API call through it so that the session
 * already holds the access token for the route's resource (the first call fetches it and
 * rewrites the cookie, as it would in a browser). Returns the Cookie header a browser
 * would now send.
 */
export async function signInAtBroker(origin: string, creds: Credentials, apiPath: string): Promise<string> {
  const jar = new CookieJar();
  const login = await fetchWithJar(jar, new URL('/auth/login', origin));
  await login.body?.cancel();
  const location = login.headers.get('location');
  if (login.status !== 302 || !location) throw new Error(`/auth/login answered ${login.status}`);

  // The provider's own cookies go in a jar of their own: the broker never sees them.
  const callback = await authorizeWithoutBrowser(location, creds, `${origin}/auth/callback`, { jar: new CookieJar() });
  const done = await fetchWithJar(jar, callback, { headers: { accept: 'application/json' } });
  if (done.status !== 303) throw new Error(`/auth/callback answered ${done.status}: ${await done.text()}`);
  await done.body?.cancel();

  const first = await fetchWithJar(jar, new URL(apiPath, origin), { headers: BROWSER_API_HEADERS });
  if (first.status !== 200) throw new Error(`the first API call answered ${first.status}: ${await first.text()}`);
  await first.body?.cancel();

  const cookie = jar.header(new URL(origin));
  if (!cookie) throw new Error('the broker set no session cookie');
  return cookie;
}

/**
 * An access token for `audience`, obtained at the provider by a client of its own:
 * code flow with PKCE, then a refresh_token grant with `resource=` (RFC 8707), which
 * oidc-provider answers with a JWT for that audience.
 */
export async function tokenAtProvider(options: {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  audience: string;
  scope: string;
  creds: Credentials;
}): Promise<{ accessToken: string; expiresIn: number | undefined }> {
  const config = await client.discovery(
    new URL(options.issuer),
    options.clientId,
    { redirect_uris: [options.redirectUri] },
    client.ClientSecretBasic(options.clientSecret),
    { execute: [client.allowInsecureRequests] },
  );
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: options.redirectUri,
    scope: `openid offline_access ${options.scope}`,
    // oidc-provider grants offline_access (a refresh token) only with prompt=consent.
    prompt: 'consent',
    resource: options.audience,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
  });
  const callback = await authorizeWithoutBrowser(authorizationUrl.href, options.creds, options.redirectUri);
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state });
  if (!tokens.refresh_token) throw new Error('the provider issued no refresh token');
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, { resource: options.audience });
  return { accessToken: refreshed.access_token, expiresIn: refreshed.expires_in };
}

/** Runs `task(i)` for i in [0, count) with at most `parallel` at a time; reports progress. */
export async function inBatches<T>(
  count: number,
  parallel: number,
  task: (i: number) => Promise<T>,
  onProgress?: (done: number) => void,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
      done++;
      onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
  return results;
}
