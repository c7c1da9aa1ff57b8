import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import { addressNetwork, clientAddress } from '../ops/client-address.ts';
import { storeKeys } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { digest, seal, unseal } from './codec.ts';
import { isSessionEnded } from './revocation.ts';
import type { Session } from './session.ts';

/**
 * The per-user session index: what `GET /auth/sessions` lists and what "sign out my
 * other sessions" and `/ops/revoke` end. Metadata only, for both SESSION_STORAGE modes.
 *
 * Layout: ONE sealed value per user, under an HMAC of (iss, sub) (`storeKeys` kind
 * `index`), holding at most MAX_SESSIONS_PER_USER entries. Every change is a
 * compare-and-set loop on that value's canonical key, so concurrent sign-ins of one user
 * on several instances never lose each other's entry (a lost race re-reads and retries).
 * One value rather than one key per session: the store interface has no list or scan,
 * and listing then costs one read, not one per session. Its TTL follows the newest
 * entry's absolute timeout; each entry is dropped once its own absolute timeout (or,
 * coarsely, its idle timeout) has passed, and when its session ends.
 *
 * An entry carries what is needed to end its session from another one: the session id
 * and, for a session that has not refreshed yet, the sign-in's refresh token (in cookie
 * mode the cookie is its only other copy) — both inside the seal, never shown. The `id`
 * shown to the browser is `listHandle`: a one-way hash of the session id, distinct from
 * the log handle, so neither the list nor a log line gives the session's secret away.
 */
export const MAX_SESSIONS_PER_USER = 50;
/** `lastSeenAt` is written at most once per this interval per session (no store write per request). */
export const LAST_SEEN_GRANULARITY_MS = 5 * 60_000;
const USER_AGENT_MAX = 200;
/** Compare-and-set rounds before a change is given up (each lost round means another writer won). */
const CAS_ATTEMPTS = 50;

export interface IndexEntry {
  /** The session id: what ends it. Sealed, never shown. */
  id: string;
  /** Epoch milliseconds. */
  createdAt: number;
  lastSeenAt: number;
  userAgent: string;
  network: string;
  /** The provider's session id (`/ops/revoke {"sid"}`). */
  idpSid?: string;
  /** The sign-in's refresh token, to revoke it at the provider (RFC 7009) if the session never refreshed. */
  refreshToken?: string;
}

interface IndexValue {
  v: 1;
  entries: IndexEntry[];
}

/** What a session list shows of an entry (CONTRACT.md, `GET /auth/sessions`). */
export interface ListedSession {
  id: string;
  current?: boolean;
  createdAt: number;
  lastSeenAt: number;
  userAgent: string;
  network: string;
}

/** The opaque `id` of a session in the list: not the session id, not its log handle. */
export function listHandle(sessionId: string): string {
  return digest(`session list handle\n${sessionId}`).slice(0, 32);
}

function userKeys(config: Config, iss: string, sub: string): string[] {
  return storeKeys(config, 'index', `${iss}\n${sub}`);
}

function live(entry: IndexEntry, config: Config, now: number): boolean {
  if (now >= entry.createdAt + config.session.absoluteTimeout * 1000) return false;
  // lastSeenAt lags activity by up to the granularity (twice: one lost best-effort touch is
  // tolerated): only a certainly idle session goes.
  return now < entry.lastSeenAt + config.session.idleTimeout * 1000 + 2 * LAST_SEEN_GRANULARITY_MS;
}

interface Read {
  entries: IndexEntry[];
  /** The raw value under the canonical key: the expectation of the next write. */
  canonical: string | undefined;
}

async function read(store: KeyValueStore, config: Config, iss: string, sub: string): Promise<Read> {
  const values = await store.getMany(userKeys(config, iss, sub));
  const sealed = values.find((value) => value !== undefined);
  if (!sealed) return { entries: [], canonical: values[0] };
  const opened = await unseal<IndexValue>(sealed, config.session, config.session.absoluteTimeout);
  const entries = 'data' in opened && opened.data.v === 1 && Array.isArray(opened.data.entries) ? opened.data.entries : [];
  const now = Date.now();
  return { entries: entries.filter((entry) => live(entry, config, now)), canonical: values[0] };
}

/**
 * Applies `change` to the user's entries with a compare-and-set on the canonical key,
 * re-reading on a lost race; then mirrors the value under the other secrets' keys, so a
 * secret's retirement loses no index. `change` returns undefined for "nothing to write".
 */
async function update(
  store: KeyValueStore,
  config: Config,
  iss: string,
  sub: string,
  change: (entries: IndexEntry[]) => IndexEntry[] | undefined,
): Promise<void> {
  const [canonical, ...others] = userKeys(config, iss, sub);
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const current = await read(store, config, iss, sub);
    const next = change(current.entries);
    if (!next) return;
    const now = Date.now();
    const entries = next
      .filter((entry) => live(entry, config, now))
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, MAX_SESSIONS_PER_USER);
    if (entries.length === 0) {
      if (current.canonical === undefined || (await store.deleteIfEquals(canonical, current.canonical))) {
        await Promise.all(others.map((key) => store.delete(key)));
        return;
      }
      continue;
    }
    const ttl = Math.max(1, Math.ceil((Math.max(...entries.map((e) => e.createdAt)) + config.session.absoluteTimeout * 1000 - now) / 1000));
    const sealed = await seal({ v: 1, entries } satisfies IndexValue, config.session, ttl);
    if (await store.compareAndSet(canonical, current.canonical, sealed, ttl)) {
      await Promise.all(others.map((key) => store.set(key, sealed, ttl)));
      return;
    }
    // Lost to another writer: back off a little, with jitter, so that a burst of sign-ins
    // of one user does not retry in lockstep.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 + attempt, 20)));
  }
  // Every round lost to another writer: this change is lost, the sessions themselves are not.
  log.warn('session_index_contended', { attempts: CAS_ATTEMPTS });
}

/** Sign-in: the new session joins its user's index (and, with a provider `sid`, the sid's pointer to the user). */
export async function indexSession(store: KeyValueStore, config: Config, session: Session, request: Request): Promise<void> {
  const entry: IndexEntry = {
    id: session.id,
    createdAt: session.createdAt,
    lastSeenAt: session.createdAt,
    userAgent: (request.headers.get('user-agent') ?? '').slice(0, USER_AGENT_MAX),
    network: addressNetwork(clientAddress(request, config)),
    idpSid: session.idpSid,
    refreshToken: session.refreshToken,
  };
  await update(store, config, session.iss, session.sub, (entries) => [entry, ...entries.filter((e) => e.id !== session.id)]);
  if (session.idpSid) {
    const ttl = config.session.absoluteTimeout;
    const sealed = await seal({ sub: session.sub }, config.session, ttl);
    await Promise.all(storeKeys(config, 'index-sid', `${session.iss}\n${session.idpSid}`).map((key) => store.set(key, sealed, ttl)));
  }
}

/**
 * Records activity, coarsely: only when this write of the session (the idle-activity
 * rewrite, at most once a minute) crosses into a new LAST_SEEN_GRANULARITY_MS interval
 * since the previous one. No read decides it, so the hot path gains no store call;
 * best effort, a failure is logged and the request goes on.
 */
/** Whether a write at `now` of a session last touched at `touchedAt` is due to refresh its "last seen". */
export function lastSeenDue(touchedAt: number, now: number): boolean {
  return Math.floor(now / LAST_SEEN_GRANULARITY_MS) !== Math.floor(touchedAt / LAST_SEEN_GRANULARITY_MS);
}

export async function touchIndexedSession(store: KeyValueStore, config: Config, session: Session, now: number): Promise<void> {
  if (!lastSeenDue(session.touchedAt, now)) return;
  try {
    await update(store, config, session.iss, session.sub, (entries) => {
      const entry = entries.find((e) => e.id === session.id);
      if (!entry) return undefined;
      return entries.map((e) => (e === entry ? { ...e, lastSeenAt: now } : e));
    });
  } catch (error) {
    log.warn('session_index_touch_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
  }
}

/** Removes these sessions from their user's index. */
export async function unindexSessions(store: KeyValueStore, config: Config, iss: string, sub: string, ids: ReadonlySet<string>): Promise<void> {
  if (ids.size === 0) return;
  await update(store, config, iss, sub, (entries) => (entries.some((e) => ids.has(e.id)) ? entries.filter((e) => !ids.has(e.id)) : undefined));
}

/** The session an entry stands for, enough to check and end it (revocation keys, records). */
export function entrySession(iss: string, sub: string, entry: IndexEntry): Session {
  return {
    v: 1,
    id: entry.id,
    iss,
    sub,
    idpSid: entry.idpSid,
    user: { sub },
    refreshToken: entry.refreshToken,
    tokens: {},
    createdAt: entry.createdAt,
    touchedAt: entry.lastSeenAt,
  };
}

/**
 * The user's live sessions, newest first. Entries whose session has ended some other way
 * (a back-channel logout, an operator's revoke, the emergency switch) are left out, and
 * removed from the index on the way.
 */
export async function liveIndexEntries(
  store: KeyValueStore,
  config: Config,
  iss: string,
  sub: string,
  options: { includeEnded?: boolean } = {},
): Promise<IndexEntry[]> {
  const { entries } = await read(store, config, iss, sub);
  // An operator's revoke writes its mark first, then ends (and cleans up after) every entry.
  if (options.includeEnded) return entries.sort((a, b) => b.createdAt - a.createdAt);
  const ended = await Promise.all(entries.map((entry) => isSessionEnded(store, config, entrySession(iss, sub, entry))));
  const gone = new Set(entries.filter((_, i) => ended[i]).map((e) => e.id));
  if (gone.size > 0) await unindexSessions(store, config, iss, sub, gone);
  return entries.filter((e) => !gone.has(e.id)).sort((a, b) => b.createdAt - a.createdAt);
}

/** The user a provider session belongs to, from the pointer written at sign-in. */
export async function subOfProviderSession(store: KeyValueStore, config: Config, iss: string, sid: string): Promise<string | undefined> {
  const sealed = (await store.getMany(storeKeys(config, 'index-sid', `${iss}\n${sid}`))).find((value) => value !== undefined);
  if (!sealed) return undefined;
  const opened = await unseal<{ sub?: unknown }>(sealed, config.session, config.session.absoluteTimeout);
  return 'data' in opened && typeof opened.data.sub === 'string' ? opened.data.sub : undefined;
}

/** What the list shows of an entry: times in unix seconds, nothing secret; `current` only for a user's own list. */
export function listed(entry: IndexEntry, currentId?: string): ListedSession {
  const id = listHandle(entry.id);
  const times = { createdAt: Math.floor(entry.createdAt / 1000), lastSeenAt: Math.floor(entry.lastSeenAt / 1000) };
  const where = { userAgent: entry.userAgent, network: entry.network };
  return currentId === undefined ? { id, ...times, ...where } : { id, current: entry.id === currentId, ...times, ...where };
}
