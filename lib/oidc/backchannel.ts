import * as jose from 'jose';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { errorResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { endProviderSession, endSubjectSessions } from '../session/revocation.ts';
import { digest } from '../session/codec.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { getProvider } from './provider.ts';

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the one event a logout token carries. */
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Logout tokens older than this are refused even if `exp` is later (replay window). */
const MAX_TOKEN_AGE_SECONDS = 300;
const CLOCK_TOLERANCE_SECONDS = 30;

let remoteJwks: { uri: string; keys: ReturnType<typeof jose.createRemoteJWKSet> } | undefined;

function jwksFor(uri: string) {
  if (remoteJwks?.uri !== uri) remoteJwks = { uri, keys: jose.createRemoteJWKSet(new URL(uri)) };
  return remoteJwks.keys;
}

/** The checks of §2.6 on the token's claims, beyond signature, iss, aud, iat and exp. */
export function checkLogoutClaims(payload: jose.JWTPayload, header: jose.JWTHeaderParameters): { sid?: string; sub?: string; jti: string } {
  // §2.4 only RECOMMENDS explicit typing. Plain `JWT` (Keycloak before 25, Authentik before
  // 2025.12 and many JWT libraries' default) says no more than a missing typ, so it is
  // treated like one, as Nimbus does; the events and nonce checks below are what tell a
  // logout token from an ID token (§4.1). Any other type (at+jwt, …) is refused.
  const typ = header.typ?.toLowerCase();
  if (typ !== undefined && typ !== 'jwt' && typ !== 'logout+jwt' && typ !== 'application/logout+jwt') {
    throw new Error('typ is not logout+jwt');
  }
  const events = payload.events;
  if (!events || typeof events !== 'object' || Array.isArray(events)) throw new Error('events claim missing');
  const member = (events as Record<string, unknown>)[BACKCHANNEL_EVENT];
  if (!member || typeof member !== 'object' || Array.isArray(member)) throw new Error('backchannel-logout event missing');
  // A nonce would make it an ID token; refusing it stops an ID token posing as a logout token.
  if ('nonce' in payload) throw new Error('nonce present');
  const sid = typeof payload.sid === 'string' && payload.sid ? payload.sid : undefined;
  const sub = typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
  if (!sid && !sub) throw new Error('neither sid nor sub');
  if (typeof payload.jti !== 'string' || !payload.jti) throw new Error('jti missing');
  if (typeof payload.iat !== 'number') throw new Error('iat missing');
  return { sid, sub, jti: payload.jti };
}

/**
 * Verifies a logout token against the provider's keys. Only asymmetric algorithms the
 * provider advertises are accepted: `none` and `HS*` are refused, since an HMAC key
 * would be the client secret and a forged logout could end anyone's session.
 */
export async function verifyLogoutToken(
  token: string,
  config: Config,
  keys: jose.JWTVerifyGetKey,
  advertisedAlgorithms: readonly string[] | undefined,
): Promise<{ sid?: string; sub?: string; jti: string; exp: number }> {
  const algorithms = (advertisedAlgorithms ?? ['RS256']).filter((alg) => alg !== 'none' && !alg.startsWith('HS'));
  const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
    issuer: config.oidc.issuer,
    audience: config.oidc.clientId,
    algorithms,
    requiredClaims: ['iat', 'exp', 'jti', 'events'],
    maxTokenAge: MAX_TOKEN_AGE_SECONDS,
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
  });
  return { ...checkLogoutClaims(payload, protectedHeader), exp: payload.exp as number };
}

/**
 * `POST /auth/backchannel-logout`: the provider tells the broker that a user's
 * session ended. Every broker session of that provider session (`sid`) or, without
 * one, of that user (`sub`) stops working at once (§2.7).
 */
export async function handleBackchannelLogout(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  const headers: Array<[string, string]> = [['cache-control', 'no-store']];
  try {
    if (!(request.headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
      throw new BrokerError('invalid_request', { publicMessage: 'expected a form with logout_token' });
    }
    const form = new URLSearchParams(await request.text());
    const token = form.get('logout_token');
    if (!token) throw new BrokerError('invalid_request', { publicMessage: 'logout_token is missing' });
    const provider = await getProvider(config);
    const metadata = provider.serverMetadata();
    if (!metadata.jwks_uri) throw new BrokerError('idp_unavailable', { publicMessage: 'the provider publishes no keys' });

    let claims: Awaited<ReturnType<typeof verifyLogoutToken>>;
    try {
      claims = await verifyLogoutToken(token, config, jwksFor(metadata.jwks_uri), metadata.id_token_signing_alg_values_supported);
    } catch (error) {
      log.warn('backchannel_logout_refused', { reason: error instanceof Error ? error.message.slice(0, 80) : 'invalid' });
      throw new BrokerError('invalid_request', { publicMessage: 'invalid logout token' });
    }
    // §2.6: a jti seen before is a replay.
    const fresh = await store.setIfAbsent(`bcl:jti:${digest(claims.jti)}`, '1', MAX_TOKEN_AGE_SECONDS + CLOCK_TOLERANCE_SECONDS * 2);
    if (!fresh) throw new BrokerError('invalid_request', { publicMessage: 'logout token replayed' });

    const ttl = config.session.absoluteTimeout;
    if (claims.sid) await endProviderSession(store, config.oidc.issuer, claims.sid, ttl);
    else if (claims.sub) await endSubjectSessions(store, config.oidc.issuer, claims.sub, ttl);
    log.info('backchannel_logout', { by: claims.sid ? 'sid' : 'sub' });
    return new Response(null, { status: 200, headers });
  } catch (error) {
    return errorResponse(error, headers);
  }
}
