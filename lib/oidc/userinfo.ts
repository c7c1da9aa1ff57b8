import * as client from 'openid-client';
import { log } from '../log.ts';
import { userFromClaims, type SessionUser } from '../session/session.ts';
import { describeProviderError } from './provider.ts';

/** The claims `/auth/session` shows beside `sub`, and the scope that asks for each (OIDC Core §5.4). */
const SHOWN_CLAIMS = { name: 'profile', email: 'email' } as const;

/**
 * The user shown by `/auth/session`, from the ID token, completed from the UserInfo
 * endpoint when a requested claim is missing from it. OpenID Connect Core §5.4 lets a
 * provider return the scope claims (`profile` → `name`, `email` → `email`) from UserInfo
 * alone when an access token is issued, and several do.
 *
 * - UserInfo is asked only when a claim the scopes request is absent, so providers that
 *   put everything in the ID token cost no extra round trip.
 * - Its `sub` must equal the ID token's (§5.3.2: otherwise the answer MUST NOT be used —
 *   a substituted token would otherwise rename the user); openid-client checks it.
 * - Only the allow-listed claims are taken; the ID token's values win when both have one.
 * - A failure keeps the sign-in: the user gets the ID token's claims, and the log says why.
 */
export async function userWithUserInfo(
  provider: client.Configuration,
  accessToken: string | undefined,
  idTokenClaims: Record<string, unknown> & { sub: string },
  scopes: string,
  /** A DPoP-bound access token is presented with a proof of its key (RFC 9449 §7). */
  dpop?: client.DPoPHandle,
): Promise<SessionUser> {
  const user = userFromClaims(idTokenClaims);
  const requested = new Set(scopes.split(/\s+/));
  const missing = Object.entries(SHOWN_CLAIMS).some(([claim, scope]) => requested.has(scope) && user[claim as keyof typeof SHOWN_CLAIMS] === undefined);
  if (!missing || !accessToken || !provider.serverMetadata().userinfo_endpoint) return user;

  let claims: client.UserInfoResponse;
  try {
    claims = await client.fetchUserInfo(provider, accessToken, idTokenClaims.sub, dpop ? { DPoP: dpop } : undefined);
  } catch (error) {
    const described = describeProviderError(error);
    const subjectMismatch = described.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED';
    log.warn('userinfo_failed', {
      problem: subjectMismatch ? 'the UserInfo answer names another subject than the ID token; its claims were not used' : described.problem,
      status: described.status,
      errorCode: described.code,
    });
    return user;
  }
  const fromUserInfo = userFromClaims(claims);
  return { ...fromUserInfo, ...user, sub: user.sub };
}
