import type { TokenEndpointResponse } from 'openid-client';
import type { AccessToken } from '../session/session.ts';

/** A provider that omits `expires_in` gets this much trust (RFC 6749 §5.1 makes it optional). */
const DEFAULT_LIFETIME_SECONDS = 300;

/**
 * `refreshAt` is `skewSeconds` before expiry, but never earlier than half the token's
 * lifetime: a provider issuing 60-second tokens with a 60-second skew would otherwise
 * have every token born stale and refreshed on every call.
 */
export function tokenFromResponse(response: TokenEndpointResponse, now: number, skewSeconds: number): AccessToken {
  const lifetime = typeof response.expires_in === 'number' && response.expires_in > 0 ? response.expires_in : DEFAULT_LIFETIME_SECONDS;
  const expiresAt = now + lifetime * 1000;
  const token: AccessToken = { value: response.access_token, expiresAt, refreshAt: expiresAt - Math.min(skewSeconds, lifetime / 2) * 1000 };
  if (typeof response.scope === 'string') token.scope = response.scope;
  return token;
}
