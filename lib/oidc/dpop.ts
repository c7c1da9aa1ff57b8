/**
 * DPoP (RFC 9449): the session's proof-of-possession key and the handles that sign with it.
 *
 * One ES256 key pair per session, made at sign-in when a route has `"dpop": true`. Its
 * private JWK travels only inside the sealed session (the iron-sealed cookie, or the
 * sealed server-side record with SESSION_STORAGE=server): never in the clear, never
 * logged. A stolen access token bound to it (`cnf.jkt`, RFC 9449 §6) is worthless without
 * the key, which never leaves the broker.
 *
 * openid-client's handle remembers the server nonces (RFC 9449 §8, §9) per origin; a new
 * handle re-learns them at the cost of one extra round trip, so each process keeps one
 * handle per session (an LRU keyed by a hash of the session id, never the id itself).
 */
import { LRUCache } from 'lru-cache';
import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { digest } from '../session/codec.ts';
import type { Session } from '../session/session.ts';
import { log } from '../log.ts';
import { getProvider, providerHealth } from './provider.ts';

/** The only algorithm the broker proves with: short keys (the cookie budget) and universal support. */
export const DPOP_ALG = 'ES256';

/** The session's key: a private EC P-256 JWK (kty, crv, x, y, d). */
export type DPoPPrivateJwk = { kty: 'EC'; crv: 'P-256'; x: string; y: string; d: string };

/**
 * The token slot of a DPoP-bound token beside the Bearer one of the same resource: a
 * bound token is kept under its own key so that it can never be picked for a plain
 * Bearer route (and a Bearer token never for a DPoP route). `'dpop '` cannot begin an
 * RFC 8707 resource (an absolute URI has no space).
 */
export function dpopTokenKey(resource: string | undefined): string {
  return `dpop ${resource ?? ''}`;
}

export function isDPoPTokenKey(key: string): boolean {
  return key.startsWith('dpop ');
}

/** The resource of a token slot (`''`: the sign-in's own audience). */
export function resourceOfTokenKey(key: string): string {
  return isDPoPTokenKey(key) ? key.slice(5) : key;
}

export function routesNeedDPoP(config: Pick<Config, 'routes'>): boolean {
  return config.routes.some((route) => route.dpop);
}

/** A fresh key pair for a new session, as the private JWK that is sealed with it. */
export async function newSessionKey(): Promise<DPoPPrivateJwk> {
  const pair = await client.randomDPoPKeyPair(DPOP_ALG, { extractable: true });
  const jwk = (await crypto.subtle.exportKey('jwk', pair.privateKey)) as JsonWebKey;
  return { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string, d: jwk.d as string };
}

/**
 * The handle's signing methods, which openid-client's type does not name: oauth4webapi's
 * DPoPHandler `addProof(url, headers, htm, accessToken)` (sets `DPoP`, with `ath` when a
 * token is given and the origin's remembered nonce) and `cacheNonce(response, url)`.
 */
export interface SessionProver {
  handle: client.DPoPHandle;
  /** RFC 7638 thumbprint of the public key: what the provider writes to `cnf.jkt`. */
  thumbprint: string;
  /** A fresh proof for one upstream request: `htu` = the upstream URL (no query), `ath` = the token's hash. */
  proof(url: URL, method: string, accessToken: string): Promise<string>;
  /** Remembers the origin's `DPoP-Nonce` answer header for the next proof to it. */
  rememberNonce(url: URL, nonce: string): void;
  /** Whether a nonce for this origin is already known (then no retry is expected). */
  knowsNonce(url: URL): boolean;
}

interface HandleInternals {
  addProof(url: URL, headers: Headers, htm: string, accessToken?: string): Promise<void>;
  cacheNonce(response: { headers: Headers }, url: URL): void;
}

/** Handles live as long as their sessions are used; this bounds the memory of one process. */
const HANDLES_MAX = 10_000;
const HANDLES_IDLE_MS = 30 * 60_000;
const STATE = Symbol.for('cloakroom.oidc.dpop-handles');
const shared = globalThis as { [STATE]?: LRUCache<string, Promise<SessionProver>> };
const handles = (shared[STATE] ??= new LRUCache<string, Promise<SessionProver>>({ max: HANDLES_MAX, ttl: HANDLES_IDLE_MS, updateAgeOnGet: true }));

const handleKey = (sessionId: string, jwk: DPoPPrivateJwk) => digest(`dpop handle\n${sessionId}\n${jwk.x}`);

/**
 * A prover for a key that has no session yet: the sign-in's (`dpop_jkt` at the
 * authorization request, RFC 9449 §10, and the proof at the code exchange).
 */
export function proverForKey(jwk: DPoPPrivateJwk, config: Config): Promise<SessionProver> {
  return buildProver(jwk, config);
}

/** The sign-in's prover becomes its new session's (the provider's nonce is already known). */
export function adoptProver(session: Pick<Session, 'id' | 'dpopKey'>, prover: SessionProver): void {
  if (session.dpopKey) handles.set(handleKey(session.id, session.dpopKey), Promise.resolve(prover));
}

/** The session's prover in this process (created once, then reused so nonces are remembered). */
export function proverFor(session: Pick<Session, 'id' | 'dpopKey'>, config: Config): Promise<SessionProver> {
  const jwk = session.dpopKey;
  if (!jwk) {
    // A session from before the route table had a DPoP route: it has no key to bind to.
    return Promise.reject(new BrokerError('unauthenticated', { publicMessage: 'this API needs a new sign-in (the session has no DPoP key)' }));
  }
  // Keyed by a hash of the id and the key's public half: never the session id itself.
  const cacheKey = handleKey(session.id, jwk);
  let prover = handles.get(cacheKey);
  if (!prover) {
    prover = buildProver(jwk, config);
    prover.catch(() => handles.delete(cacheKey));
    handles.set(cacheKey, prover);
  }
  return prover;
}

async function buildProver(jwk: DPoPPrivateJwk, config: Config): Promise<SessionProver> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const privateKey = await crypto.subtle.importKey('jwk', { ...jwk, ext: false } as JsonWebKey, algorithm, false, ['sign']);
  // openid-client refuses a public key that is not extractable (it puts the JWK in the proof header).
  const publicKey = await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as JsonWebKey, algorithm, true, ['verify']);
  const provider = await getProvider(config);
  const problems = dpopProviderProblems(config, provider.serverMetadata());
  if (problems.length > 0) {
    log.error('dpop_provider_unsupported', { problem: problems[0] });
    throw new BrokerError('idp_unavailable', { publicMessage: 'the identity provider does not support DPoP' });
  }
  const handle = client.getDPoPHandle(provider, { privateKey, publicKey });
  const internals = handle as unknown as HandleInternals;
  const thumbprint = await handle.calculateThumbprint();
  const nonces = new Set<string>();
  return {
    handle,
    thumbprint,
    async proof(url, method, accessToken) {
      const headers = new Headers();
      await internals.addProof(url, headers, method, accessToken);
      return headers.get('dpop') as string;
    },
    rememberNonce(url, nonce) {
      internals.cacheNonce({ headers: new Headers({ 'dpop-nonce': nonce }) }, url);
      nonces.add(url.origin);
    },
    knowsNonce(url) {
      return nonces.has(url.origin);
    },
  };
}

/**
 * Configuration problems of DPoP routes against the provider's discovery document: a
 * provider that does not advertise DPoP (RFC 9449 §5.1
 * `dpop_signing_alg_values_supported`) would hand out Bearer tokens that the API refuses.
 */
export function dpopProviderProblems(config: Pick<Config, 'routes'>, metadata: client.ServerMetadata): string[] {
  const dpopRoutes = config.routes.filter((route) => route.dpop);
  if (dpopRoutes.length === 0) return [];
  const supported = metadata.dpop_signing_alg_values_supported;
  if (Array.isArray(supported) && supported.includes(DPOP_ALG)) return [];
  const why = Array.isArray(supported)
    ? `the identity provider's discovery document lists dpop_signing_alg_values_supported ${JSON.stringify(supported)} without ${DPOP_ALG}`
    : 'the identity provider does not advertise DPoP (no dpop_signing_alg_values_supported in its discovery document)';
  return dpopRoutes.map(
    (route) => `BFF_ROUTES: the route "${route.path}" has "dpop": true but ${why}: enable DPoP (RFC 9449, ${DPOP_ALG}) at the provider, or remove "dpop" from the route`,
  );
}

/** The start-time check: the provider's document when it has been discovered (the probe), else nothing to say yet. */
export async function dpopProblemsAtStart(config: Config): Promise<string[]> {
  if (!routesNeedDPoP(config) || providerHealth().status === 'down') return [];
  try {
    return dpopProviderProblems(config, (await getProvider(config)).serverMetadata());
  } catch {
    return [];
  }
}
