import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { digest, seal, unseal } from '../session/codec.ts';
import type { AccessToken, Session } from '../session/session.ts';
import { storeKeys } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';

/**
 * The refresh record: ONE entry per session that has refreshed, never one per rotation,
 * so the store grows with live sessions and not with refresh volume (AUDIT H2). It holds
 * the session's current refresh token and access tokens, and the hashes of the few
 * refresh tokens it replaced, so that a cookie can be placed against it:
 *
 *   current        the cookie holds the live refresh token: use it, refresh with it
 *   behind         the cookie holds the immediate predecessor (an answer that never
 *                  reached the browser, AUDIT M3), however late; or an older generation
 *                  superseded within REFRESH_GRACE_PERIOD (parallel requests): adopt
 *   stale          anything else while a record exists: a spent refresh token whose
 *                  successor someone has already used — two holders of one session
 *                  (AUDIT M4, RFC 9700 §4.14.2)
 *   indeterminate  a refresh was sent and its outcome is unknown (AUDIT L13): the
 *                  spent token must never be replayed, the session is over
 *
 * The key is an HMAC of the session id (`keys.ts`: one key per session secret, written
 * under all, read in one round trip); the value is sealed with iron, so a shared store
 * never holds a token in the clear. TTL = the session's remaining absolute lifetime.
 * The ID token is deliberately not kept here (it moves out of the cookie separately).
 */
export interface RefreshRecord {
  v: 1;
  /** Refreshes recorded for this session; grows by one per write. */
  gen: number;
  current: {
    rtHash: string;
    refreshToken: string;
    /** Access tokens by resource, as of the last refresh (expired ones dropped). */
    tokens: Record<string, AccessToken>;
  };
  /** Replaced refresh tokens, newest first: `history[0]` is the immediate predecessor. */
  history: Array<{ rtHash: string; supersededAt: number }>;
  /** A refresh with `current.refreshToken` was sent and its outcome is unknown. */
  indeterminate?: boolean;
}

/** Replaced generations remembered; older ones are `stale` (or adopted within the grace window). */
export const HISTORY_LENGTH = 4;

export interface LoadedRecord {
  record: RefreshRecord | undefined;
  /** The sealed value the record was read from (change detection between reads). */
  sealed: string | undefined;
  /** The raw value under the canonical key: the expectation of the fencing write. */
  canonical: string | undefined;
}

export type Standing = 'current' | 'behind' | 'stale' | 'indeterminate';

export const refreshTokenHash = (refreshToken: string) => digest(refreshToken);

/**
 * Recently opened seals: a waiter polling the record must not pay a decrypt per poll.
 * Per configuration (its secrets): what one set of secrets opened says nothing about
 * what another can.
 */
const openedByConfig = new WeakMap<Config, Map<string, RefreshRecord | undefined>>();
function openedFor(config: Config): Map<string, RefreshRecord | undefined> {
  let opened = openedByConfig.get(config);
  if (!opened) openedByConfig.set(config, (opened = new Map()));
  return opened;
}
const OPENED_MAX = 1_000;

/**
 * A record that is there but cannot be opened is never read as "no record": that would
 * classify the cookie's refresh token as current and send it, and if the record holds a
 * successor the provider sees a replay and revokes the grant (RFC 9700 §4.14.2). Mid-
 * rotation an instance that lacks the newest secret meets records sealed with it: the
 * request fails with 503 (the session kept, another instance or a moment later can serve
 * it) and the operator is told which variable differs. An expired seal is the session's
 * own end (the record lives as long as the session): nothing to read.
 */
async function open(sealed: string, config: Config): Promise<RefreshRecord | undefined> {
  const opened = openedFor(config);
  if (opened.has(sealed)) return opened.get(sealed);
  const result = await unseal<RefreshRecord>(sealed, config.session, config.session.absoluteTimeout);
  if ('failure' in result && result.failure !== 'expired') {
    log.error('refresh_record_unreadable', {
      reason: result.failure,
      fix: result.failure === 'unknown-password' ? 'another instance seals with a secret this one lacks: give every instance the same SESSION_SECRETS' : 'the record is corrupt',
    });
    throw new BrokerError('store_unavailable', { publicMessage: 'the session state cannot be read by this instance' });
  }
  const record = 'data' in result && result.data.v === 1 ? result.data : undefined;
  if (opened.size >= OPENED_MAX) opened.delete(opened.keys().next().value as string);
  opened.set(sealed, record);
  return record;
}

export async function readRecord(session: Session, config: Config, store: KeyValueStore): Promise<LoadedRecord> {
  const values = await store.getMany(storeKeys(config, 'refresh', session.id));
  const sealed = values.find((v) => v !== undefined);
  return { record: sealed ? await open(sealed, config) : undefined, sealed, canonical: values[0] };
}

/** Seconds the session can still live; the record's TTL. */
function remainingLifetime(session: Session, config: Config, now: number): number {
  return Math.ceil((session.createdAt + config.session.absoluteTimeout * 1000 - now) / 1000);
}

/**
 * Writes `record` only while the canonical key still holds what was read under the lock
 * (a fence: a holder whose lease ran out cannot overwrite a newer record), then under
 * the other secrets' keys. Returns the new state, or undefined when the fence refused.
 */
export async function writeRecord(
  session: Session,
  record: RefreshRecord,
  expected: LoadedRecord,
  config: Config,
  store: KeyValueStore,
): Promise<LoadedRecord | undefined> {
  const ttl = remainingLifetime(session, config, Date.now());
  // The session reached its absolute lifetime during the refresh: it is over, not in conflict.
  if (ttl <= 0) throw new BrokerError('session_expired', { publicMessage: 'the session reached its absolute lifetime', endsSession: true });
  const sealed = await seal(record, config.session, ttl);
  const [canonical, ...others] = storeKeys(config, 'refresh', session.id);
  if (!(await store.compareAndSet(canonical, expected.canonical, sealed, ttl))) return undefined;
  await Promise.all(others.map((key) => store.set(key, sealed, ttl)));
  openedFor(config).set(sealed, record);
  return { record, sealed, canonical: sealed };
}

export async function deleteRecord(session: Session, config: Config, store: KeyValueStore): Promise<void> {
  await Promise.all(storeKeys(config, 'refresh', session.id).map((key) => store.delete(key)));
}

/** Where the cookie's refresh token stands against the record (see above). */
export function classify(session: Session, record: RefreshRecord | undefined, now: number, graceSeconds: number): Standing {
  // No record: nobody has refreshed this session yet, the sign-in's token is current.
  if (!record || !session.refreshToken) return 'current';
  if (record.indeterminate) return 'indeterminate';
  const hash = refreshTokenHash(session.refreshToken);
  if (hash === record.current.rtHash) return 'current';
  const index = record.history.findIndex((h) => h.rtHash === hash);
  if (index === 0) return 'behind';
  if (index > 0 && now - record.history[index].supersededAt <= graceSeconds * 1000) return 'behind';
  return 'stale';
}

/**
 * The session with the record's refresh token and, per resource, whichever access token
 * lives longer. The same object when the record has nothing newer, so that callers can
 * tell an activity-only rewrite from a change.
 */
export function adoptRecord(session: Session, record: RefreshRecord | undefined): Session {
  if (!record) return session;
  let tokens = session.tokens;
  for (const [resource, token] of Object.entries(record.current.tokens)) {
    const held = tokens[resource];
    if (!held || held.expiresAt < token.expiresAt) {
      if (tokens === session.tokens) tokens = { ...session.tokens };
      tokens[resource] = token;
    }
  }
  if (tokens === session.tokens && session.refreshToken === record.current.refreshToken) return session;
  return { ...session, refreshToken: record.current.refreshToken, tokens };
}

/** The record after a successful refresh from `base` (the session as adopted under the lock). */
export function nextRecord(
  previous: RefreshRecord | undefined,
  base: Session,
  outcome: { refreshToken: string; resource: string; token: AccessToken },
  now: number,
): RefreshRecord {
  const tokens: Record<string, AccessToken> = {};
  for (const [resource, token] of Object.entries({ ...base.tokens, [outcome.resource]: outcome.token })) {
    if (token.expiresAt > now) tokens[resource] = token;
  }
  const oldHash = refreshTokenHash(base.refreshToken as string);
  const newHash = refreshTokenHash(outcome.refreshToken);
  const history = previous?.history ?? [];
  return {
    v: 1,
    gen: (previous?.gen ?? 0) + 1,
    current: { rtHash: newHash, refreshToken: outcome.refreshToken, tokens },
    // A provider that does not rotate keeps the token: nothing was replaced.
    history: newHash === oldHash ? history : [{ rtHash: oldHash, supersededAt: now }, ...history].slice(0, HISTORY_LENGTH),
  };
}
