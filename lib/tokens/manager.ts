import { randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { getProvider, isInvalidGrant } from '../oidc/provider.ts';
import { tokenFromResponse } from '../oidc/tokens.ts';
import type { AccessToken, Session } from '../session/session.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { isConsumed, lockKey, readSuccessor, recordOutcome, refreshKey, type RefreshOutcome } from './successors.ts';

/**
 * The access-token manager: hands out a token for a resource, refreshing it at most
 * once per refresh token however many requests need it at the same moment.
 *
 *   fresh enough?      use it (renewed `TOKEN_REFRESH_SKEW` seconds before expiry)
 *   successor known?   adopt it — someone already spent this refresh token
 *   token spent?       401 session_expired for this request alone: never replay it
 *   refresh in flight? wait for it (single-flight per refresh token in the process)
 *   otherwise          take the store lock (one refresh across instances), refresh, record
 */
export interface TokenGrant {
  token: AccessToken;
  /** The session with any adopted or refreshed tokens; a new object when it changed. */
  session: Session;
  changed: boolean;
}

const instanceId = randomUUID();
const inFlight = new Map<string, Promise<RefreshOutcome>>();
/** A refresh that takes longer than this is treated as lost and may be retried by another instance. */
const LOCK_TTL_SECONDS = 20;
const LOCK_POLL_MS = 25;
/** Enough to follow a successor chain and then refresh for another resource. */
const MAX_STEPS = 6;

function isFresh(token: AccessToken, now: number): boolean {
  return now < token.refreshAt;
}

function adopt(session: Session, outcome: RefreshOutcome): Session {
  return {
    ...session,
    refreshToken: outcome.refreshToken,
    idToken: outcome.idToken ?? session.idToken,
    tokens: { ...session.tokens, [outcome.resource]: outcome.token },
  };
}

export async function accessTokenFor(
  session: Session,
  resource: string | undefined,
  config: Config,
  store: KeyValueStore,
): Promise<TokenGrant> {
  const key = resource ?? '';
  let current = session;
  const adoptedFrom = new Set<string>();
  for (let step = 0; step < MAX_STEPS; step++) {
    const now = Date.now();
    const token = current.tokens[key];
    if (token && isFresh(token, now)) return { token, session: current, changed: current !== session };
    if (!current.refreshToken) {
      // Nothing to refresh with: the token in hand is all there is.
      if (token && token.expiresAt > now) return { token, session: current, changed: current !== session };
      throw new BrokerError('session_expired', { publicMessage: 'the access token expired and there is no refresh token', endsSession: true });
    }
    const rtKey = refreshKey(current.refreshToken);
    if (!adoptedFrom.has(rtKey)) {
      const successor = await readSuccessor(store, rtKey, config);
      if (successor) {
        adoptedFrom.add(rtKey);
        current = adopt(current, successor);
        continue;
      }
      if (await isConsumed(store, rtKey)) {
        // A stale copy of the cookie, seen after the grace window: replaying its refresh
        // token would make the provider revoke the live session's grant.
        throw new BrokerError('session_expired', { publicMessage: 'this session was refreshed elsewhere' });
      }
    }
    adoptedFrom.add(rtKey);
    current = adopt(current, await refreshOnce(current.refreshToken, rtKey, key, config, store));
  }
  throw new BrokerError('idp_unavailable', { publicMessage: 'token refresh did not settle' });
}

/**
 * The session with every refresh outcome recorded since adopted, without refreshing:
 * what the browser should hold now. Used only by requests that refreshed.
 */
async function newestSession(session: Session, config: Config, store: KeyValueStore): Promise<Session> {
  let current = session;
  for (let step = 0; step < MAX_STEPS && current.refreshToken; step++) {
    const successor = await readSuccessor(store, refreshKey(current.refreshToken), config);
    if (!successor || successor.refreshToken === current.refreshToken) break;
    current = adopt(current, successor);
  }
  return current;
}

/**
 * The session a response should write back: the newest known (see `newestSession`), or
 * nothing when its refresh token is spent and no successor is known any more — writing
 * that cookie back would hand the browser a dead refresh token again.
 */
export async function sessionToWrite(session: Session, config: Config, store: KeyValueStore): Promise<Session | undefined> {
  const newest = await newestSession(session, config, store);
  if (newest === session && session.refreshToken && (await isConsumed(store, refreshKey(session.refreshToken)))) return undefined;
  return newest;
}

/** One refresh per refresh token in this process; later callers share its promise. */
function refreshOnce(refreshToken: string, rtKey: string, resource: string, config: Config, store: KeyValueStore): Promise<RefreshOutcome> {
  const running = inFlight.get(rtKey);
  if (running) {
    return running;
  }
  const refresh = refreshUnderLock(refreshToken, rtKey, resource, config, store).finally(() => inFlight.delete(rtKey));
  inFlight.set(rtKey, refresh);
  return refresh;
}

async function refreshUnderLock(refreshToken: string, rtKey: string, resource: string, config: Config, store: KeyValueStore): Promise<RefreshOutcome> {
  const deadline = Date.now() + LOCK_TTL_SECONDS * 1000;
  // Another instance may be refreshing the same token: wait for its outcome.
  // An outcome recorded for this token serves us when it rotated the token (we must not
  // use it again) or when it is for our resource. A provider that does not rotate keeps
  // the token, and an outcome for another resource is no reason not to refresh.
  const serves = (successor: RefreshOutcome | undefined): successor is RefreshOutcome =>
    !!successor && (successor.refreshToken !== refreshToken || successor.resource === resource);
  while (!(await store.setIfAbsent(lockKey(rtKey), instanceId, LOCK_TTL_SECONDS))) {
    const successor = await readSuccessor(store, rtKey, config);
    if (serves(successor)) return successor;
    if (Date.now() > deadline) throw new BrokerError('idp_unavailable', { publicMessage: 'a token refresh is still running' });
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    // Between our check and the lock another instance may have finished.
    const successor = await readSuccessor(store, rtKey, config);
    if (serves(successor)) return successor;
    if (await isConsumed(store, rtKey)) throw new BrokerError('session_expired', { publicMessage: 'this session was refreshed elsewhere' });
    const outcome = await refreshAtProvider(refreshToken, resource, config);
    await recordOutcome(store, rtKey, outcome, outcome.refreshToken !== refreshToken, config);
    return outcome;
  } finally {
    await store.delete(lockKey(rtKey));
  }
}

async function refreshAtProvider(refreshToken: string, resource: string, config: Config): Promise<RefreshOutcome> {
  const provider = await getProvider(config);
  const parameters: Record<string, string> = resource ? { resource } : {};
  try {
    const response = await client.refreshTokenGrant(provider, refreshToken, parameters);
    return {
      // A provider that does not rotate keeps the same refresh token (RFC 6749 §6).
      refreshToken: response.refresh_token ?? refreshToken,
      resource,
      token: tokenFromResponse(response, Date.now(), config.tokens.refreshSkew),
      idToken: response.id_token,
    };
  } catch (error) {
    if (isInvalidGrant(error)) {
      log.info('refresh_rejected', { resource: resource || undefined });
      throw new BrokerError('session_expired', { publicMessage: 'the identity provider ended this session', cause: error, endsSession: true });
    }
    log.warn('refresh_failed', { errorName: error instanceof Error ? error.name : 'unknown', resource: resource || undefined });
    throw new BrokerError('idp_unavailable', { cause: error });
  }
}
