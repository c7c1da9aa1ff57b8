import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';

/**
 * The provider's metadata and this client's configuration, discovered once per process
 * and shared by every request. A failed discovery is not cached: the next request
 * tries again, and meanwhile callers answer 503 `idp_unavailable`.
 */
let discovered: Promise<client.Configuration> | undefined;

/** Outbound calls to the provider give up after this long and count as unreachable. */
const PROVIDER_TIMEOUT_SECONDS = 10;

async function clientAuthentication(config: Config): Promise<client.ClientAuth> {
  const { clientAuth, clientSecret, clientPrivateKey } = config.oidc;
  if (clientAuth === 'client_secret_post') return client.ClientSecretPost(clientSecret);
  if (clientAuth === 'private_key_jwt') {
    const jwk = clientPrivateKey as JsonWebKey & { kid?: string; alg?: string };
    const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'OKP' ? 'Ed25519' : 'RS256');
    const { importJWK } = await import('jose');
    const key = (await importJWK(jwk, alg)) as CryptoKey;
    return client.PrivateKeyJwt({ key, kid: jwk.kid });
  }
  return client.ClientSecretBasic(clientSecret);
}

async function discover(config: Config): Promise<client.Configuration> {
  const { issuer, clientId, allowInsecureHttp } = config.oidc;
  const configuration = await client.discovery(
    new URL(issuer),
    clientId,
    { redirect_uris: [config.redirectUri], response_types: ['code'] },
    await clientAuthentication(config),
    { execute: allowInsecureHttp ? [client.allowInsecureRequests] : [], timeout: PROVIDER_TIMEOUT_SECONDS },
  );
  // openid-client compares the discovered `issuer` with the URL it fetched; compare with
  // the configured string too, so a trailing-slash difference is a loud configuration
  // error rather than ID tokens that never validate (OpenID Connect Discovery §4.3).
  const advertised = configuration.serverMetadata().issuer;
  if (advertised !== issuer) {
    throw new BrokerError('idp_unavailable', {
      publicMessage: 'the identity provider is misconfigured',
      cause: new Error(`discovery issuer ${advertised} does not equal OIDC_ISSUER ${issuer}`),
    });
  }
  configuration.timeout = PROVIDER_TIMEOUT_SECONDS;
  return configuration;
}

export async function getProvider(config: Config): Promise<client.Configuration> {
  if (!discovered) {
    discovered = discover(config);
    discovered.catch((error: unknown) => {
      discovered = undefined;
      log.error('discovery_failed', { issuer: config.oidc.issuer, errorName: error instanceof Error ? error.name : 'unknown', detail: error instanceof Error && error.cause instanceof Error ? error.cause.message : undefined });
    });
  }
  try {
    return await discovered;
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    throw new BrokerError('idp_unavailable', { cause: error });
  }
}

export function resetProviderForTests(): void {
  discovered = undefined;
}

/**
 * Sorts a failed call to the provider: only `invalid_grant` means the grant is gone
 * (RFC 6749 §5.2); anything else — a network error, a timeout, a 5xx, an unexpected
 * answer — is the provider being unavailable, and must not cost the user the session.
 */
export function isInvalidGrant(error: unknown): boolean {
  return error instanceof client.ResponseBodyError && error.error === 'invalid_grant';
}

export function providerErrorCode(error: unknown): string | undefined {
  // A 401 with `WWW-Authenticate: Basic error="invalid_client"` (oidc-provider, when the
  // client authenticated with Basic) is an answer like any other error body, not an outage.
  const code =
    error instanceof client.ResponseBodyError || error instanceof client.AuthorizationResponseError
      ? error.error
      : error instanceof client.WWWAuthenticateChallengeError
        ? error.cause[0]?.parameters.error
        : undefined;
  // Only a well-formed RFC 6749 error code is ever repeated to a client.
  return code !== undefined && /^[a-z_]{1,64}$/.test(code) ? code : undefined;
}
