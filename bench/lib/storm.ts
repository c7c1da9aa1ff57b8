/**
 * The refresh storm: one session whose access token has expired, many requests at the
 * same instant, a provider that rotates refresh tokens on every use (and revokes the
 * grant when a spent one is replayed). The provider counts the refresh grants.
 */
import { randomBytes } from 'node:crypto';
import { startDemoApi } from '../../demo/api.ts';
import { startDevIdp } from '../../demo/idp.ts';
import { freePort, NEXT_BIN, progress, startChild, stopChild, waitForHttp } from './processes.ts';
import { BROWSER_API_HEADERS, signInAtBroker } from './signin.ts';

export interface StormFigures {
  parallel: number;
  accessTokenTtlSeconds: number;
  refreshGrants: number;
  succeeded: number;
  statusCodes: Record<string, number>;
  /** Answers that carried a new session cookie. */
  cookiesRewritten: number;
  /** The cookie a browser holds afterwards (the last one set) still works. */
  followUpOk: boolean;
  grantsRevoked: number;
}

export async function refreshStorm(options: { parallel: number; accessTokenTtl: number }): Promise<StormFigures> {
  const audience = 'https://storm-api.bench.example/';
  const brokerPort = await freePort();
  const origin = `http://localhost:${brokerPort}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const idp = await startDevIdp({
    port: 0,
    accessTokenTtl: options.accessTokenTtl,
    rotateRefreshTokens: true,
    showDemoHint: false,
    resources: { [audience]: { scope: 'demo:read' } },
    clients: [{ client_id: 'cloakroom-storm', client_secret: clientSecret, redirect_uris: [`${origin}/auth/callback`] }],
  });
  const api = await startDemoApi({ port: 0, issuer: idp.issuer, audience, name: 'storm-api' });

  // fetch's default dispatcher opens as many connections as there are parallel requests.
  const broker = startChild('storm broker', [NEXT_BIN, 'start', '--port', String(brokerPort), '--hostname', '127.0.0.1'], {
    env: {
      APP_BASE_URL: origin,
      OIDC_ISSUER: idp.issuer,
      OIDC_ALLOW_INSECURE_HTTP: 'true',
      OIDC_CLIENT_ID: 'cloakroom-storm',
      OIDC_CLIENT_SECRET: clientSecret,
      SESSION_SECRETS: randomBytes(32).toString('base64url'),
      BFF_ROUTES: JSON.stringify([{ path: '/api/storm', upstream: api.url, auth: 'required', resource: audience, scopes: ['demo:read'] }]),
    },
  });
  try {
    await waitForHttp(`${origin}/healthz`, broker);
    const cookie = await signInAtBroker(origin, { username: 'alice', password: 'alice-password' }, '/api/storm/items');
    // The sign-in's first API call fetched the token for the route; let it expire.
    const waitMs = options.accessTokenTtl * 1000 + 500;
    progress(`refresh storm: signed in; waiting ${(waitMs / 1000).toFixed(1)} s for the access token to expire`);
    await new Promise((resolve) => setTimeout(resolve, waitMs));

    const grantsBefore = idp.stats.refreshGrants;
    const revokedBefore = idp.stats.grantsRevoked;
    const answers = await Promise.all(
      Array.from({ length: options.parallel }, async () => {
        try {
          const response = await fetch(`${origin}/api/storm/items`, {
            headers: { ...BROWSER_API_HEADERS, cookie },
            signal: AbortSignal.timeout(30_000),
          });
          await response.arrayBuffer();
          return { status: response.status, setCookie: response.headers.getSetCookie() };
        } catch {
          return { status: 0, setCookie: [] as string[] };
        }
      }),
    );
    const refreshGrants = idp.stats.refreshGrants - grantsBefore;
    const statusCodes: Record<string, number> = {};
    for (const { status } of answers) statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    const rewritten = answers.filter((a) => a.setCookie.some((c) => c.startsWith('cloakroom=')));

    // The browser keeps whichever cookie it received last; that one must work.
    const last = rewritten.at(-1)?.setCookie.find((c) => c.startsWith('cloakroom='));
    const followUpCookie = last ? last.split(';')[0] : cookie;
    const followUp = await fetch(`${origin}/api/storm/items`, { headers: { ...BROWSER_API_HEADERS, cookie: followUpCookie } });
    await followUp.arrayBuffer();

    return {
      parallel: options.parallel,
      accessTokenTtlSeconds: options.accessTokenTtl,
      refreshGrants,
      succeeded: answers.filter((a) => a.status === 200).length,
      statusCodes,
      cookiesRewritten: rewritten.length,
      followUpOk: followUp.status === 200,
      grantsRevoked: idp.stats.grantsRevoked - revokedBefore,
    };
  } catch (error) {
    throw new Error(`refresh storm failed: ${error instanceof Error ? error.message : String(error)}\n${broker.output().slice(-2_000)}`, { cause: error });
  } finally {
    await stopChild(broker);
    await api.close();
    await idp.close();
  }
}
