/**
 * Back-channel logout tokens as the provider would sign them (Back-Channel Logout 1.0
 * §2.4), with a key the test generates and hands to the real oidc-provider as its own
 * signing key (`startStack({ idp: { jwks: { keys: [key] } } })`), so the broker fetches
 * the matching public key from the provider's real JWKS endpoint.
 */
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export async function providerSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'RS256', use: 'sig' };
}

/** A valid logout token (iat now, exp now+120, a fresh jti) with `claims` merged over; `unset` removes claims. */
export async function signLogoutToken(
  key: JWK,
  base: { issuer: string; audience: string },
  claims: Record<string, unknown>,
  unset: string[] = [],
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { iss: base.issuer, aud: base.audience, iat: now, exp: now + 120, jti: randomUUID(), events: { [EVENT]: {} }, ...claims };
  for (const name of unset) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'logout+jwt' }).sign(await importJWK(key, 'RS256'));
}

/** POSTs a logout token to `origin`'s back-channel endpoint; answers the status. */
export async function postLogoutToken(origin: string, token: string): Promise<number> {
  const response = await fetch(new URL('/auth/backchannel-logout', origin), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
  await response.body?.cancel();
  return response.status;
}
