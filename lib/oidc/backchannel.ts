import * as jose from 'jose';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { readCappedText } from '../http/body.ts';
import { errorResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import { endByLogoutToken } from '../session/revocation.ts';
import { liveIndexEntries, subOfProviderSession } from '../session/session-index.ts';
import { canonicalStoreKey } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { getProvider } from './provider.ts';
// The provider's keys with one bounded refetch policy for unknown `kid`s (rotation, floods).
import { providerKeys } from './provider-keys.ts';

/** OpenID Connect Back-Channel Logout 1.0 §2.4: the one event a logout token carries. */
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/**
 * A logout token is about 1 KB; the body is read up to this many bytes and refused
 * beyond. The endpoint is unauthenticated until the token is verified, and Next.js route
 * handlers put no limit on a body: without a cap, one large POST holds its whole size in
 * memory (and a crash of a memory store forgets every revocation).
 */
export const MAX_BACKCHANNEL_BODY_BYTES = 16 * 1024;


export interface LogoutClaims {
  sid?: string;
  sub?: string;
  jti: string;
  /** Seconds since the epoch, on the provider's clock. */
  iat: number;
}

/** The checks of §2.6 on the token's claims, beyond signature, iss, aud, iat and exp. */
export function checkLogoutClaims(payload: jose.JWTPayload, header: jose.JWTHeaderParameters): LogoutClaims {
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
  return { sid, sub, jti: payload.jti, iat: payload.iat };
}

/**
 * Verifies a logout token against the provider's keys. Only asymmetric algorithms the
 * provider advertises are accepted: `none` and `HS*` are refused, since an HMAC key
 * would be the client secret and a forged logout could end anyone's session.
 *
 * `exp` is checked when present but not required: Back-Channel Logout 1.0 made it
 * REQUIRED only in a later errata, and providers that follow the earlier text (glewlwyd)
 * omit it. Nothing is lost: `iat` is required and bounded by `OIDC_LOGOUT_TOKEN_MAX_AGE`,
 * and the `jti` replay mark outlives that window.
 */
export async function verifyLogoutToken(
  token: string,
  config: Config,
  keys: jose.JWTVerifyGetKey,
  advertisedAlgorithms: readonly string[] | undefined,
): Promise<LogoutClaims> {
  const algorithms = (advertisedAlgorithms ?? ['RS256']).filter((alg) => alg !== 'none' && !alg.startsWith('HS'));
  const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
    issuer: config.oidc.issuer,
    audience: config.oidc.clientId,
    algorithms,
    requiredClaims: ['iat', 'jti', 'events'],
    maxTokenAge: config.clock.logoutTokenMaxAge,
    clockTolerance: config.clock.tolerance,
  });
  return checkLogoutClaims(payload, protectedHeader);
}

/** Why a logout token was refused, in words that carry nothing of the token itself. */
function refusalReason(error: unknown): Record<string, string> {
  if (error instanceof jose.errors.JWTClaimValidationFailed) return { reason: error.code, claim: error.claim, check: error.reason };
  if (error instanceof jose.errors.JOSEError) return { reason: error.code };
  // checkLogoutClaims's own messages are fixed strings.
  return { reason: error instanceof Error ? error.message.slice(0, 80) : 'invalid' };
}

/**
 * The instant (epoch milliseconds, the broker's clock) before which sessions are over.
 * The logout happened at the provider at `iat`, on the provider's clock; sessions carry
 * `createdAt` on the broker's. A session created before the logout must end, one created
 * after it must not. `iat` is whole seconds and the clocks may differ by up to the
 * tolerance, so the provider's instant is widened to the end of its second plus the
 * tolerance — but never past the moment of processing here: a sign-in after this answer
 * is always a new session. With prompt delivery that is "now"; with a delivery queued for
 * minutes, a user who signed in again meanwhile keeps the new session.
 */
export function logoutCutoff(iat: number, toleranceSeconds: number, now = Date.now()): number {
  return Math.min((iat + 1 + toleranceSeconds) * 1000 - 1, now);
}

/**
 * `POST /auth/backchannel-logout`: the provider tells the broker that a user's
 * session ended. Every broker session of that provider session (`sid`) or, without
 * one, of that user (`sub`) stops working at once (§2.7). Everything an anonymous caller
 * controls (type, size, form) is checked before the provider is contacted.
 */
export async function handleBackchannelLogout(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  const headers: Array<[string, string]> = [['cache-control', 'no-store']];
  try {
    if (!(request.headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
      throw new BrokerError('invalid_request', { publicMessage: 'expected a form with logout_token' });
    }
    const form = new URLSearchParams(await readCappedText(request, MAX_BACKCHANNEL_BODY_BYTES));
    const token = form.get('logout_token');
    if (!token) throw new BrokerError('invalid_request', { publicMessage: 'logout_token is missing' });
    const provider = await getProvider(config);
    const metadata = provider.serverMetadata();
    if (!metadata.jwks_uri) throw new BrokerError('idp_unavailable', { publicMessage: 'the provider publishes no keys' });

    let claims: LogoutClaims;
    try {
      claims = await verifyLogoutToken(token, config, providerKeys(metadata.jwks_uri), metadata.id_token_signing_alg_values_supported);
    } catch (error) {
      log.warn('backchannel_logout_refused', refusalReason(error));
      throw new BrokerError('invalid_request', { publicMessage: 'invalid logout token' });
    }
    // §2.6: a jti seen before is a replay. One key on every instance, kept as long as the
    // token could still verify. It is marked only once the sessions are ended: had the
    // store failed in between, the provider's retry must not be refused as a replay. Two
    // deliveries racing past the check both end the same sessions, which is harmless.
    const { tolerance, logoutTokenMaxAge } = config.clock;
    const jtiKey = canonicalStoreKey(config, 'bcl-jti', `${config.oidc.issuer}\n${claims.jti}`);
    if ((await store.get(jtiKey)) !== undefined) {
      log.warn('backchannel_logout_refused', { reason: 'replayed' });
      throw new BrokerError('invalid_request', { publicMessage: 'logout token replayed' });
    }
    const cutoff = logoutCutoff(claims.iat, tolerance);
    // Counted before the marks are written: afterwards the index no longer lists them as live.
    const ending = await sessionsEndedByLogout(store, config, claims, cutoff);
    await endByLogoutToken(store, config, { iss: config.oidc.issuer, sid: claims.sid, sub: claims.sub }, cutoff);
    metrics.sessionsEnded.inc({ reason: 'backchannel' }, ending);
    await store.set(jtiKey, '1', logoutTokenMaxAge + tolerance * 2);
    log.info('backchannel_logout', { by: claims.sid && claims.sub ? 'sid+sub' : claims.sid ? 'sid' : 'sub' });
    return new Response(null, { status: 200, headers });
  } catch (error) {
    return errorResponse(error, headers);
  }
}

/**
 * How many live broker sessions a logout token ends, for `cloakroom_sessions_ended_total
 * {reason="backchannel"}`: the revocation marks end them without listing them, so they
 * are counted from the session index (the rule of §2.7 as `endByLogoutToken` applies it).
 * Best effort: a count the index cannot give is 0, never a failed logout.
 */
async function sessionsEndedByLogout(store: KeyValueStore, config: Config, claims: LogoutClaims, cutoff: number): Promise<number> {
  try {
    const iss = config.oidc.issuer;
    const sub = claims.sub ?? (claims.sid ? await subOfProviderSession(store, config, iss, claims.sid) : undefined);
    if (!sub) return 0;
    const entries = await liveIndexEntries(store, config, iss, sub);
    return entries.filter((entry) => {
      if (entry.createdAt > cutoff) return false;
      if (!claims.sid) return true;
      // With sid: that provider session's sessions, and (when sub is named too) the user's sessions that had no sid.
      return entry.idpSid === claims.sid || (claims.sub !== undefined && entry.idpSid === undefined);
    }).length;
  } catch {
    return 0;
  }
}
