import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';

/**
 * How long a provider (or anyone) may cache the broker's key set. Short, because it is
 * how long a rotation must wait between publishing a new key and signing with it
 * (README, "Rotating keys"); oidc-provider caches a client's `jwks_uri` for at least
 * 60 s whatever this says.
 */
export const CLIENT_JWKS_MAX_AGE_SECONDS = 60;

/**
 * `GET /.well-known/jwks.json`: the public halves of the broker's `private_key_jwt` keys
 * (every key of OIDC_CLIENT_PRIVATE_KEY, the signing one first), so that a provider
 * registered with this `jwks_uri` finds a new key before the broker signs with it. Only
 * public members ever: `publicJwk` is exported from the key itself (client-keys.ts), never
 * a copy of the private JWK with members deleted. 404 when the broker signs no assertions.
 *
 * A public document, so cacheable (briefly) — unlike the broker's other JSON answers.
 */
export async function handleClientJwks(_request: Request, config: Config): Promise<Response> {
  if (config.oidc.clientAuth !== 'private_key_jwt' || config.oidc.clientKeys.length === 0) {
    throw new BrokerError('not_found');
  }
  return new Response(JSON.stringify({ keys: config.oidc.clientKeys.map((key) => key.publicJwk) }), {
    status: 200,
    headers: {
      'content-type': 'application/jwk-set+json',
      'cache-control': `public, max-age=${CLIENT_JWKS_MAX_AGE_SECONDS}`,
      'x-content-type-options': 'nosniff',
    },
  });
}
