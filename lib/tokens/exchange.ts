import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { classifyTokenEndpointError, describeProviderError, getProvider, providerErrorCode } from '../oidc/provider.ts';
import { TOKEN_EXCHANGE_GRANT } from '../oidc/capabilities.ts';
import { tokenFromResponse } from '../oidc/tokens.ts';
import { metrics } from '../ops/metrics.ts';
import { seal, unseal } from '../session/codec.ts';
import { sessionHandle, type AccessToken, type Session } from '../session/session.ts';
import { canonicalStoreKey, storeKeys } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { tryLease } from './lock.ts';

/**
 * RFC 8693 token exchange per route (`"exchange": {"audience", "scope"}`): the API gets
 * a token the provider issued for that audience and scope alone, obtained with the
 * session's own access token as the subject token. A token leaked from that API is
 * worth nothing at any other API, and the broad sign-in token never leaves the broker.
 *
 *   cached and fresh?   use it (one store read; the unseal is memoised)
 *   else                single-flight per session and audience in this process, then a
 *                       lease in the store (lock.ts, the refresh lock's pattern) so that
 *                       instances sharing Redis exchange once; under the lease re-read
 *                       (another instance may have just written it), then exchange
 *
 * Where it lives: in the store, sealed (iron, SESSION_SECRETS), with the token's own
 * lifetime as TTL — never in the cookie. A cookie has a hard budget
 * (SESSION_COOKIE_MAX_BYTES): a JWT access token sealed is about 1.3 KB, so three
 * exchanged routes would double the cookie and every request would carry them all.
 * Shared state also lets every instance reuse one exchange.
 *
 * Unlike a refresh, an exchange consumes nothing: a lost answer or an unreadable cache
 * entry costs one more exchange, never the session.
 */
/** RFC 8693 §3: the subject is an OAuth access token. */
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** How often a waiter on another instance looks for the holder's outcome. */
const LOCK_POLL_MS = 25;
/** A waiter gives up (503) after this long: discovery plus a token call, each 10 s at most. */
const LOCK_WAIT_MS = 25_000;
/** Unsealed cache entries kept in this process, by their sealed value (which changes with every write). */
const OPENED_MAX = 2_000;

export interface ExchangeTarget {
  audience: string;
  scope: string;
}

interface CachedExchange {
  v: 1;
  token: AccessToken;
}

const opened = new Map<string, AccessToken | undefined>();
/** Exchanges running in this process, per store client and cache key. */
const inFlight = new WeakMap<KeyValueStore, Map<string, Promise<AccessToken>>>();

function cacheSubject(session: Session, target: ExchangeTarget): string {
  return `${session.id}\n${target.audience}\n${target.scope}`;
}

async function readCached(key: string, config: Config, store: KeyValueStore): Promise<AccessToken | undefined> {
  const sealed = await store.get(key);
  if (sealed === undefined) return undefined;
  if (opened.has(sealed)) return opened.get(sealed);
  const result = await unseal<CachedExchange>(sealed, config.session, config.session.absoluteTimeout);
  // Unreadable (another instance's newer secret, an expired seal): a miss, not an error.
  const token = 'data' in result && result.data.v === 1 ? result.data.token : undefined;
  if (opened.size >= OPENED_MAX) opened.delete(opened.keys().next().value as string);
  opened.set(sealed, token);
  return token;
}

/**
 * The token the route's API receives: exchanged from `subject` (the session's own access
 * token, fresh — the caller refreshed it first when it had expired) for `target`.
 */
export async function exchangedTokenFor(session: Session, subject: AccessToken, target: ExchangeTarget, config: Config, store: KeyValueStore): Promise<AccessToken> {
  const key = canonicalStoreKey(config, 'exchange', cacheSubject(session, target));
  const cached = await readCached(key, config, store);
  if (cached && Date.now() < cached.refreshAt) return cached;
  let flights = inFlight.get(store);
  if (!flights) inFlight.set(store, (flights = new Map()));
  const running = flights.get(key);
  if (running) return running;
  const flight = exchangeUnderLock(session, subject, target, key, config, store).finally(() => flights.delete(key));
  flights.set(key, flight);
  return flight;
}

async function exchangeUnderLock(session: Session, subject: AccessToken, target: ExchangeTarget, key: string, config: Config, store: KeyValueStore): Promise<AccessToken> {
  const lockKeys = storeKeys(config, 'exchange-lock', cacheSubject(session, target));
  const deadline = Date.now() + LOCK_WAIT_MS;
  const fresh = (token: AccessToken | undefined): token is AccessToken => token !== undefined && Date.now() < token.refreshAt;
  let lease = await tryLease(store, lockKeys, config.tokens.lockLease);
  while (!lease) {
    // Another instance is exchanging for this session and audience: its token is what we need.
    const latest = await readCached(key, config, store);
    if (fresh(latest)) return latest;
    if (Date.now() > deadline) throw new BrokerError('idp_unavailable', { publicMessage: 'a token exchange is still running' });
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    lease = await tryLease(store, lockKeys, config.tokens.lockLease);
  }
  try {
    const latest = await readCached(key, config, store);
    if (fresh(latest)) return latest;
    const token = await exchangeAtProvider(session, subject, target, config);
    const ttl = Math.ceil((token.expiresAt - Date.now()) / 1000);
    if (ttl > 0) {
      const sealed = await seal({ v: 1, token } satisfies CachedExchange, config.session, ttl);
      await store.set(key, sealed, ttl);
      opened.set(sealed, token);
    }
    return token;
  } finally {
    await lease.release();
  }
}

/**
 * The RFC 8693 §2.1 request, and what its failure means (RFC 8693 §2.2.2 errors are
 * RFC 6749 §5.2's, classified as for a refresh by `classifyTokenEndpointError`):
 *  - the subject token refused (`invalid_grant`, `invalid_request`…): the session's grant
 *    is gone at the provider → 401 `session_expired`, the session ends;
 *  - `invalid_target` / `invalid_scope`: the provider will not issue this audience or
 *    scope to this client — configuration, not the user: 503, session kept, an operator
 *    told which route (ending every user's session for a typo helps nobody);
 *  - the client refused, an outage, an unusable answer → 503 `idp_unavailable`, session kept.
 */
async function exchangeAtProvider(session: Session, subject: AccessToken, target: ExchangeTarget, config: Config): Promise<AccessToken> {
  const provider = await getProvider(config);
  let response: client.TokenEndpointResponse;
  try {
    response = await client.genericGrantRequest(provider, TOKEN_EXCHANGE_GRANT, {
      subject_token: subject.value,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      audience: target.audience,
      scope: target.scope,
    });
  } catch (error) {
    const kind = classifyTokenEndpointError(error);
    const providerError = providerErrorCode(error);
    const described = describeProviderError(error);
    if (kind === 'grant_gone' && providerError !== 'invalid_target' && providerError !== 'invalid_scope') {
      metrics.tokenExchange.inc({ outcome: 'rejected' });
      log.info('token_exchange_rejected', { session: sessionHandle(session), audience: target.audience, status: described.status, providerError });
      throw new BrokerError('session_expired', { publicMessage: 'the identity provider ended this session', cause: error, endsSession: true });
    }
    metrics.tokenExchange.inc({ outcome: 'failed' });
    if (kind === 'grant_gone') {
      log.error('token_exchange_refused', {
        audience: target.audience,
        scope: target.scope,
        providerError,
        problem: `the identity provider refuses to issue audience "${target.audience}" with scope "${target.scope}" to this client: allow it at the provider or fix the route's "exchange"`,
      });
      throw new BrokerError('idp_unavailable', { publicMessage: 'the identity provider refused the token exchange for this API; an operator has been told', cause: error });
    }
    log.warn('token_exchange_failed', { audience: target.audience, problem: described.problem, status: described.status, errorCode: described.code });
    throw new BrokerError('idp_unavailable', { cause: error });
  }
  // RFC 8693 §2.2.1: `issued_token_type` is REQUIRED; anything but an access token (an ID
  // token, a SAML assertion) is not something to put in an `Authorization: Bearer` header.
  const issued = (response as { issued_token_type?: unknown }).issued_token_type;
  if (issued !== undefined && issued !== ACCESS_TOKEN_TYPE) {
    metrics.tokenExchange.inc({ outcome: 'failed' });
    log.error('token_exchange_failed', { audience: target.audience, problem: 'the provider issued a token that is not an access token', issuedTokenType: typeof issued === 'string' ? issued.slice(0, 80) : undefined });
    throw new BrokerError('idp_unavailable', { publicMessage: 'the identity provider issued an unusable token' });
  }
  metrics.tokenExchange.inc({ outcome: 'ok' });
  return tokenFromResponse(response, Date.now(), config.tokens.refreshSkew);
}
