import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { describeProviderError, getProvider, tokenEndpointFailure } from '../oidc/provider.ts';
import { tokenFromResponse } from '../oidc/tokens.ts';
import { dpopTokenKey, resourceOfTokenKey } from '../oidc/dpop.ts';
import { metrics } from '../ops/metrics.ts';
import { inSpan, noteRefreshOutcome } from '../ops/tracing.ts';
import { endSession } from '../session/revocation.ts';
import { sessionHandle, type AccessToken, type Session } from '../session/session.ts';
import { storeKeys } from '../stores/keys.ts';
import { StoreUnavailableError, type KeyValueStore } from '../stores/store.ts';
import { classifyRefreshFailure } from './failure.ts';
import { tryLease, type Lease } from './lock.ts';
import { adoptRecord, classify, deleteRecord, nextRecord, readRecord, refreshTokenHash, writeRecord, type LoadedRecord, type RefreshRecord } from './record.ts';

/**
 * The access-token manager: hands out a token for a resource, refreshing at most once
 * per refresh token however many requests — on however many instances — need it.
 *
 *   fresh enough?        use it; the store is not read (the hot path)
 *   the session's record (record.ts) says the cookie is
 *     behind             adopt the record's tokens (a lost answer, parallel requests)
 *     stale              two holders of one session: security event, then policy
 *     indeterminate      an earlier refresh's outcome is unknown: the session is over
 *     current            the record's token if fresh, else refresh:
 *                        single-flight per session in the process, then the session's
 *                        lease in the store; under it re-read the record (another
 *                        instance may have finished) and only then call the provider;
 *                        write the new record fenced by what was read under the lease
 */
export interface TokenGrant {
  token: AccessToken;
  /** The session with any adopted or refreshed tokens; a new object when it changed. */
  session: Session;
  changed: boolean;
}

/*
 * The lease (config.tokens.lockLease, REFRESH_LOCK_LEASE, default 5 s) is short, and
 * renewed every third of it while the refresh runs: a crashed holder blocks the session's
 * refreshes for at most this long, a slow provider never lets it expire.
 */
/** How often a waiter on another instance looks for the holder's outcome. */
const LOCK_POLL_MS = 25;
/** A waiter gives up (503) after this long: discovery plus a token call, each 10 s at most. */
const LOCK_WAIT_MS = 25_000;
/** Adopting and refreshing alternate at most this often before the answer is 503. */
const MAX_STEPS = 6;

/**
 * Refreshes running in this process, per store client and session: one store client per
 * process in production; tests stand in for instances with one client each.
 */
const inFlight = new WeakMap<KeyValueStore, Map<string, Promise<Flight>>>();

interface Flight {
  loaded: LoadedRecord;
  /** A refreshed ID token, for the session's existing `id_token_hint` handling. */
  idToken?: string;
}

function isFresh(token: AccessToken, now: number): boolean {
  return now < token.refreshAt;
}

/**
 * `options.dpop`: the route is a DPoP route (RFC 9449). Its token lives in its own slot
 * (`dpopTokenKey`), obtained with a refresh grant proved with the session's key, so the
 * provider binds it (`cnf.jkt`) — and a bound token is never handed to a Bearer route.
 */
export async function accessTokenFor(
  session: Session,
  resource: string | undefined,
  config: Config,
  store: KeyValueStore,
  options: { dpop?: client.DPoPHandle } = {},
): Promise<TokenGrant> {
  const key = options.dpop ? dpopTokenKey(resource) : (resource ?? '');
  let current = session;
  let loaded: LoadedRecord | undefined;
  let refreshedHere = false;
  const done = (token: AccessToken): TokenGrant => {
    if (current !== session && !refreshedHere) metrics.refresh.inc({ outcome: 'adopted' });
    return { token, session: current, changed: current !== session };
  };
  for (let step = 0; step < MAX_STEPS; step++) {
    const token = current.tokens[key];
    if (token && isFresh(token, Date.now())) return done(token);
    if (!current.refreshToken) {
      // Nothing to refresh with: the token in hand is all there is.
      if (token && token.expiresAt > Date.now()) return done(token);
      throw new BrokerError('session_expired', { publicMessage: 'the access token expired and there is no refresh token', endsSession: true });
    }
    loaded ??= await readRecord(current, config, store);
    const standing = classify(current, loaded.record, Date.now(), config.tokens.refreshGrace);
    if (standing === 'stale') await refuseStale(current, loaded, config, store);
    if (standing === 'indeterminate') throw outcomeUnknown();
    const adopted = adoptRecord(current, loaded.record);
    if (adopted !== current) {
      current = adopted;
      continue;
    }
    // Current, and the record has nothing fresher for this resource: refresh.
    const flight = await refreshOnce(current, key, loaded, config, store, options.dpop);
    refreshedHere = true;
    loaded = flight.loaded;
    if (flight.idToken) current = { ...current, idToken: flight.idToken };
  }
  throw new BrokerError('idp_unavailable', { publicMessage: 'token refresh did not settle' });
}

/**
 * The session the browser should hold now, without refreshing: the record's newest state
 * when the cookie is current or behind; undefined when it is stale or ended — writing
 * that cookie back would hand the browser a dead refresh token again. Used when an
 * answer writes the cookie (after a refresh, or to record idle activity).
 */
export async function sessionToWrite(session: Session, config: Config, store: KeyValueStore): Promise<Session | undefined> {
  if (!session.refreshToken) return session;
  const { record } = await readRecord(session, config, store);
  const standing = classify(session, record, Date.now(), config.tokens.refreshGrace);
  if (standing === 'stale' || standing === 'indeterminate') return undefined;
  return adoptRecord(session, record);
}

/**
 * What `GET /auth/session` reports: the state the proxy will enforce. The newest session
 * when the cookie is current or behind; a stale cookie is handled as the proxy handles
 * it (security event and policy) and thrown as `session_expired`.
 */
export async function reconcileSession(session: Session, config: Config, store: KeyValueStore): Promise<Session> {
  if (!session.refreshToken) return session;
  const loaded = await readRecord(session, config, store);
  const standing = classify(session, loaded.record, Date.now(), config.tokens.refreshGrace);
  if (standing === 'stale') await refuseStale(session, loaded, config, store);
  if (standing === 'indeterminate') throw outcomeUnknown();
  return adoptRecord(session, loaded.record);
}

/**
 * The refresh tokens that may still be live at the provider for this session: the
 * record's current one (the cookie may hold a spent predecessor, AUDIT L1) and the
 * cookie's own. What logout revokes.
 */
export async function liveRefreshTokens(session: Session, config: Config, store: KeyValueStore): Promise<string[]> {
  let record: RefreshRecord | undefined;
  try {
    ({ record } = await readRecord(session, config, store));
  } catch (error) {
    // A record this instance cannot open (another instance's newer secret) must not stop
    // a logout: the cookie's own token is still revoked, the record is deleted anyway.
    if (!(error instanceof BrokerError && error.code === 'store_unavailable')) throw error;
  }
  const tokens = new Set<string>();
  if (record) tokens.add(record.current.refreshToken);
  if (session.refreshToken) tokens.add(session.refreshToken);
  return [...tokens];
}

/** Drops the session's refresh record (logout): nothing left to adopt or to revoke. */
export async function forgetRefreshRecord(session: Session, config: Config, store: KeyValueStore): Promise<void> {
  await deleteRecord(session, config, store);
}

/* ------------------------------------------------------------------------------------ */

function outcomeUnknown(): BrokerError {
  return new BrokerError('session_expired', { publicMessage: 'the session had to be ended: a token refresh did not complete', endsSession: true });
}

/**
 * A spent refresh token whose successor someone has already used: two holders of one
 * session (a copied cookie). `log` (default) refuses this request alone, so the live
 * holder keeps working; `end` ends the session for every copy, revokes the live refresh
 * token at the provider (RFC 7009) and forgets the record, so a thief who refreshed
 * first is cut off too (RFC 9700 §4.14.2).
 */
async function refuseStale(session: Session, loaded: LoadedRecord, config: Config, store: KeyValueStore): Promise<never> {
  metrics.refreshTokenReuse.inc();
  log.warn('refresh_token_reuse', { session: sessionHandle(session), policy: config.anomalyPolicy, generation: loaded.record?.gen });
  if (config.anomalyPolicy !== 'end') {
    throw new BrokerError('session_expired', { publicMessage: 'this session was refreshed elsewhere' });
  }
  await endSession(store, config, session);
  metrics.sessionsEnded.inc({ reason: 'anomaly' });
  if (loaded.record) await revokeBestEffort(loaded.record.current.refreshToken, config);
  await deleteRecord(session, config, store);
  throw new BrokerError('session_expired', { publicMessage: 'this session was ended: its refresh token was used twice', endsSession: true });
}

async function revokeBestEffort(refreshToken: string, config: Config): Promise<void> {
  try {
    const provider = await getProvider(config);
    if (!provider.serverMetadata().revocation_endpoint) return;
    await client.tokenRevocation(provider, refreshToken, { token_type_hint: 'refresh_token' });
  } catch (error) {
    log.warn('revocation_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
  }
}

/** One refresh per session in this process (per store client); later callers share it. */
function refreshOnce(session: Session, resource: string, seen: LoadedRecord, config: Config, store: KeyValueStore, dpop?: client.DPoPHandle): Promise<Flight> {
  let flights = inFlight.get(store);
  if (!flights) inFlight.set(store, (flights = new Map()));
  const running = flights.get(session.id);
  if (running) return running;
  // One span per refresh actually run (callers that join a flight in progress share it).
  const flight = inSpan('token refresh', { 'cloakroom.resource': resource || 'default' }, () => refreshUnderLock(session, resource, seen, config, store, dpop)).finally(() =>
    flights.delete(session.id),
  );
  flights.set(session.id, flight);
  return flight;
}

async function refreshUnderLock(session: Session, resource: string, seen: LoadedRecord, config: Config, store: KeyValueStore, dpop?: client.DPoPHandle): Promise<Flight> {
  const lockKeys = storeKeys(config, 'refresh-lock', session.id);
  const deadline = Date.now() + LOCK_WAIT_MS;
  let lease = await tryLease(store, lockKeys, config.tokens.lockLease);
  while (!lease) {
    // Another instance is refreshing this session: its outcome is what we need.
    const latest = await readRecord(session, config, store);
    if (latest.sealed !== seen.sealed) return { loaded: latest };
    if (Date.now() > deadline) throw new BrokerError('idp_unavailable', { publicMessage: 'a token refresh is still running' });
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    lease = await tryLease(store, lockKeys, config.tokens.lockLease);
  }
  try {
    // Between our read and the lease another instance may have finished (Duende's
    // distributed-lock failure, their support issue #1286): the caller re-classifies.
    const latest = await readRecord(session, config, store);
    if (latest.sealed !== seen.sealed) return { loaded: latest };
    return await refreshAtProvider(session, resource, latest, lease, config, store, dpop);
  } finally {
    await lease.release();
  }
}

/** `slot`: the token's key in the session (a resource, or `dpopTokenKey(resource)` for a DPoP-bound token). */
async function refreshAtProvider(session: Session, slot: string, latest: LoadedRecord, lease: Lease, config: Config, store: KeyValueStore, dpop?: client.DPoPHandle): Promise<Flight> {
  const resource = resourceOfTokenKey(slot);
  const refreshToken = session.refreshToken as string;
  // Discovery failing means nothing was sent: an outage, the session is kept.
  const provider = await getProvider(config);
  // Checked last, right before sending (discovery may have taken seconds): a lease that
  // may have run out means someone else may be refreshing now; do not send, the caller
  // starts over from the record.
  if (lease.lost) return { loaded: latest };
  let response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  try {
    // With DPoP, openid-client proves the grant with the session's key and retries once
    // on the provider's `use_dpop_nonce` (RFC 9449 §8).
    response = await client.refreshTokenGrant(provider, refreshToken, resource ? { resource } : {}, dpop ? { DPoP: dpop } : undefined);
  } catch (error) {
    const failure = classifyRefreshFailure(error);
    if (failure === 'grant_gone') {
      metrics.refresh.inc({ outcome: 'rejected' });
      noteRefreshOutcome('rejected');
      // The provider ended the grant (expired, revoked there): the session ends with it.
      metrics.sessionsEnded.inc({ reason: 'expired' });
      log.info('refresh_rejected', { resource: resource || undefined });
      await deleteRecord(session, config, store);
      throw new BrokerError('session_expired', { publicMessage: 'the identity provider ended this session', cause: error, endsSession: true });
    }
    metrics.refresh.inc({ outcome: 'failed' });
    noteRefreshOutcome('failed');
    if (failure === 'unknown') {
      // Error codes and operator words, never `error.name`: production builds minify class names.
      const described = describeProviderError(error);
      log.warn('refresh_outcome_unknown', { session: sessionHandle(session), problem: described.problem, errorCode: described.code, resource: resource || undefined });
      await endIndeterminate(session, latest, [refreshToken], config, store);
    }
    // An outage or a refused client (issue 13): 503 with the session kept, logged in words an operator acts on.
    throw tokenEndpointFailure(error, { resource });
  }

  // OpenID Connect Core §12.2: a refreshed ID token must name the same user and issuer.
  const claims = response.claims();
  if (claims && (claims.sub !== session.sub || claims.iss !== session.iss)) {
    metrics.refresh.inc({ outcome: 'failed' });
    noteRefreshOutcome('failed');
    log.warn('refresh_identity_mismatch', { session: sessionHandle(session) });
    await endIndeterminate(session, latest, [refreshToken, response.refresh_token].filter((t): t is string => !!t), config, store);
  }

  // RFC 9449 §5: a provider that ignored the proof answers `token_type` Bearer. That
  // token is kept in the Bearer slot (the rotated refresh token must be recorded all
  // the same), and the DPoP route is refused: its API would not accept it.
  const unbound = dpop !== undefined && response.token_type.toLowerCase() !== 'dpop';
  const now = Date.now();
  const record = nextRecord(
    latest.record,
    session,
    {
      // A provider that does not rotate keeps the same refresh token (RFC 6749 §6).
      refreshToken: response.refresh_token ?? refreshToken,
      resource: unbound ? resource : slot,
      token: tokenFromResponse(response, now, config.tokens.refreshSkew),
    },
    now,
  );
  const written = await writeRecordPersistently(session, record, latest, config, store);
  if (!written) {
    // Only a holder whose lease ran out gets here: someone else wrote meanwhile.
    log.error('refresh_record_conflict', { session: sessionHandle(session) });
    return { loaded: await readRecord(session, config, store) };
  }
  metrics.refresh.inc({ outcome: 'ok' });
  noteRefreshOutcome('ok');
  if (unbound) {
    log.error('dpop_token_not_bound', { resource: resource || undefined, problem: 'the identity provider issued a Bearer token for a DPoP route: enable DPoP for this client at the provider' });
    throw new BrokerError('idp_unavailable', { publicMessage: 'the identity provider did not bind the token to the session key' });
  }
  return { loaded: written, idToken: response.id_token };
}

/**
 * The record of a refresh the provider has just answered: the only place the rotated
 * refresh token now exists. A store that blips for a moment must not lose it (the next
 * request would send the spent token, and the provider would end the grant), so the write
 * is tried again for about a second while the lease is still renewed. A retry after a
 * write that did land is refused by the fence and reads as a conflict, whose re-read finds
 * this very record.
 */
async function writeRecordPersistently(session: Session, record: RefreshRecord, latest: LoadedRecord, config: Config, store: KeyValueStore): Promise<LoadedRecord | undefined> {
  for (const pauseMs of [100, 300, 600]) {
    try {
      return await writeRecord(session, record, latest, config, store);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      log.warn('refresh_record_write_retried', { session: sessionHandle(session) });
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
  return writeRecord(session, record, latest, config, store);
}

/**
 * The refresh was sent and its outcome cannot be used (AUDIT L13): the provider may
 * have rotated, so the spent token must never be sent again. The record is marked, the
 * session ended for every copy, the tokens revoked best-effort; the answer is 401
 * `session_expired` with the cookie cleared.
 */
async function endIndeterminate(session: Session, latest: LoadedRecord, revoke: string[], config: Config, store: KeyValueStore): Promise<never> {
  const base = latest.record ?? {
    v: 1 as const,
    gen: 0,
    current: { rtHash: refreshTokenHash(session.refreshToken as string), refreshToken: session.refreshToken as string, tokens: {} },
    history: [],
  };
  await writeRecord(session, { ...base, gen: base.gen + 1, indeterminate: true }, latest, config, store);
  await endSession(store, config, session);
  metrics.sessionsEnded.inc({ reason: 'expired' });
  // In the background: the provider just failed us, the user should not wait for it again.
  void Promise.all(revoke.map((token) => revokeBestEffort(token, config)));
  throw outcomeUnknown();
}
