import type { Config } from '../config/load.ts';

/** RFC 8693 §2.1. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/**
 * What the route table needs from the provider, checked against its discovery document
 * (RFC 8414 §2 `grant_types_supported`): a route with `exchange` needs the token-exchange
 * grant. One sentence per route, naming it and the fix; empty when all is well. A
 * provider that omits `grant_types_supported` is taken at its word (RFC 8414's default
 * is authorization_code and implicit only).
 */
export function providerCapabilityProblems(config: Config, grantTypesSupported: readonly string[] | undefined): string[] {
  const routes = config.routes.filter((route) => route.exchange);
  if (routes.length === 0 || grantTypesSupported?.includes(TOKEN_EXCHANGE_GRANT)) return [];
  return routes.map(
    (route) =>
      `BFF_ROUTES route ${JSON.stringify(route.path)} has "exchange", but the identity provider (OIDC_ISSUER) does not list ${TOKEN_EXCHANGE_GRANT} in grant_types_supported: ` +
      'enable token exchange at the provider (Keycloak: "Standard token exchange" on the client; Okta, Auth0, Entra ID: their token-exchange or on-behalf-of settings), or remove "exchange" from the route',
  );
}
