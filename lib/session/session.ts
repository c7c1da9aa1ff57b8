import type { DPoPPrivateJwk } from '../oidc/dpop.ts';
import { digest } from './codec.ts';

/**
 * What the encrypted session cookie holds. Never readable by the browser: it is sealed
 * (AES-256-CBC + HMAC-SHA-256, iron) with a server secret before it leaves.
 */
export interface AccessToken {
  value: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Epoch milliseconds after which the token is renewed before use (see `tokenFromResponse`). */
  refreshAt: number;
  scope?: string;
}

export interface Session {
  v: 1;
  /** The broker's own random session id: what logout ends, for every copy of the cookie. */
  id: string;
  iss: string;
  sub: string;
  /** The provider's session id (`sid` claim), the key of back-channel logout. */
  idpSid?: string;
  /** The allow-listed ID-token claims that `/auth/session` shows. */
  user: SessionUser;
  /**
   * Never sealed into the cookie (`cookiePayload` drops it): a refresh may hand one over
   * in passing. The logout hint, when configured, lives in the store (storage-hint.ts).
   */
  idToken?: string;
  refreshToken?: string;
  /** Access tokens by RFC 8707 resource; '' is the token of the sign-in itself. */
  tokens: Record<string, AccessToken>;
  /**
   * RFC 9449: the session's DPoP private key (lib/oidc/dpop.ts), present when a route has
   * `"dpop": true`. Sealed with the session like the refresh token, never in the clear.
   */
  dpopKey?: DPoPPrivateJwk;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds of the last activity written to the cookie (idle timeout). */
  touchedAt: number;
  /** Where the sign-in came from, coarsely: the baseline of stolen-session detection (lib/security/session-anomaly.ts). */
  signedInFrom?: SessionOrigin;
}

/** A coarse origin: the network (IPv4 /24, IPv6 /48) and browser family with major version. Never a full address. */
export interface SessionOrigin {
  network: string;
  browser: string;
}

export interface SessionUser {
  sub: string;
  name?: string;
  email?: string;
}

/** The claims that may leave the broker (CONTRACT.md, `GET /auth/session`). */
export function userFromClaims(claims: Record<string, unknown>): SessionUser {
  const user: SessionUser = { sub: String(claims.sub) };
  if (typeof claims.name === 'string') user.name = claims.name;
  if (typeof claims.email === 'string') user.email = claims.email;
  return user;
}

export interface SessionLifetimes {
  idleTimeout: number;
  absoluteTimeout: number;
}

/** When the session ends unless it is used again (epoch ms). */
export function sessionExpiresAt(session: Session, lifetimes: SessionLifetimes): number {
  return Math.min(session.createdAt + lifetimes.absoluteTimeout * 1000, session.touchedAt + lifetimes.idleTimeout * 1000);
}

/**
 * Idle activity is written back to the cookie at most this often, so that a busy page
 * does not re-seal the cookie on every call (a seal is the costliest step of a request).
 */
export function touchIntervalMs(lifetimes: SessionLifetimes): number {
  return Math.min(60, Math.max(1, Math.floor(lifetimes.idleTimeout / 10))) * 1000;
}

/**
 * A session's handle for logs: the same for every line about one session, so that an
 * operator can follow it, but neither the session id (what logout ends) nor reversible
 * to it.
 */
export function sessionHandle(session: Pick<Session, 'id'>): string {
  return digest(`log handle\n${session.id}`).slice(0, 16);
}
