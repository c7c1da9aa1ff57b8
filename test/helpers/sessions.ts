/**
 * Helpers of the session-list tests: what the provider says of a refresh token
 * (RFC 7662 introspection, with the broker's client credentials), and the refresh token
 * each sign-in was issued, from the provider's own `grant.success` events.
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';

export async function isActiveAtProvider(issuer: string, clientId: string, clientSecret: string, token: string): Promise<boolean> {
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { introspection_endpoint: string };
  const response = await fetch(discovery.introspection_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token, token_type_hint: 'refresh_token' }),
  });
  if (response.status !== 200) throw new Error(`introspection answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { active: boolean }).active;
}

export interface Grant {
  grantType: string;
  refreshToken?: string;
  /** The ID token's `sid` (the provider session). */
  sid?: string;
}

/** Every token endpoint answer of the provider, in order: a sign-in is the last `authorization_code` one. */
export function watchGrants(provider: Provider): Grant[] {
  const grants: Grant[] = [];
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const body = ctx.body as Record<string, unknown> | undefined;
    const grant: Grant = { grantType: String(ctx.oidc.params?.grant_type ?? '') };
    if (typeof body?.refresh_token === 'string') grant.refreshToken = body.refresh_token;
    if (typeof body?.id_token === 'string') {
      const claims = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString('utf8')) as { sid?: string };
      grant.sid = claims.sid;
    }
    grants.push(grant);
  });
  return grants;
}

/** The grant of the latest sign-in. */
export function lastSignIn(grants: readonly Grant[]): Grant {
  const grant = grants.findLast((g) => g.grantType === 'authorization_code');
  if (!grant) throw new Error('no sign-in seen at the provider');
  return grant;
}

export interface ListedSession {
  id: string;
  current?: boolean;
  createdAt: number;
  lastSeenAt: number;
  userAgent: string;
  network: string;
}
