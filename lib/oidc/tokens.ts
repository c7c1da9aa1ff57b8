import type { TokenEndpointResponse } from 'openid-client';
import type { AccessToken } from '../session/session.ts';

/** A provider that omits `expires_in` gets this much trust (RFC 6749 §5.1 makes it optional). */
const DEFAULT_LIFETIME_SECONDS = 300;

export function tokenFromResponse(response: TokenEndpointResponse, now: number): AccessToken {
  const lifetime = typeof response.expires_in === 'number' && response.expires_in > 0 ? response.expires_in : DEFAULT_LIFETIME_SECONDS;
  const token: AccessToken = { value: response.access_token, expiresAt: now + lifetime * 1000 };
  if (typeof response.scope === 'string') token.scope = response.scope;
  return token;
}
