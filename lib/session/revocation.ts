import type { Config } from '../config/load.ts';
import { storeKeys, type StoreKeyKind } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import type { Session } from './session.ts';

/**
 * Revocation for stateless cookies. A sealed cookie stays cryptographically valid
 * until it expires, so a copy taken before sign-out would still work. The store keeps
 * what has ended for as long as a cookie could live (the absolute timeout):
 *  - `ended` — this session (by its id), ended by logout;
 *  - `bcl-sid` / `bcl-sub` — the instant a back-channel logout ended every session of a
 *    provider session or of a user; a session created at or before that instant is over
 *    (OpenID Connect Back-Channel Logout 1.0 §2.7). A logout token naming both `sid` and
 *    `sub` also writes a `bcl-sub` entry that only sessions *without* a provider session id
 *    read: their ID token carried no `sid`, so the sid entry alone would miss them;
 *  - `revoked-before` — one global instant (`POST /ops/revoke {"createdBefore"}`, the
 *    emergency switch): every session created at or before it is over. Read by the same
 *    one getMany as the others, so it costs the check no round trip.
 * Every key is an HMAC under the session secrets (`storeKeys`), so whoever can read a
 * shared store learns neither session ids nor users from its keys. Writes go under every
 * secret's key; a check reads all of them in one round trip.
 */
type Subject =
  | { kind: 'ended'; sessionId: string }
  | { kind: 'bcl-sid'; iss: string; sid: string }
  | { kind: 'bcl-sub'; iss: string; sub: string; onlyWithoutSid: boolean }
  | { kind: 'revoked-before' };

function keysOf(config: Config, subject: Subject): string[] {
  let kind: StoreKeyKind;
  let value: string;
  if (subject.kind === 'ended') [kind, value] = ['ended', subject.sessionId];
  else if (subject.kind === 'bcl-sid') [kind, value] = ['bcl-sid', `${subject.iss}\n${subject.sid}`];
  else if (subject.kind === 'revoked-before') [kind, value] = ['revoked-before', 'every session'];
  // A separate value (not a flag in the entry) so that the check stays one getMany.
  else [kind, value] = ['bcl-sub', `${subject.onlyWithoutSid ? 'without-sid' : 'all'}\n${subject.iss}\n${subject.sub}`];
  return storeKeys(config, kind, value);
}

interface RevocationKeys {
  config: Config;
  /** Each group: every secret's key for one subject. */
  ended: string[];
  logouts: string[];
  /** `ended` then `logouts`: what one check reads. */
  all: string[];
}

/**
 * The keys to check for a session, computed once per unsealed session: the same frozen
 * object serves a cookie's every request from the unseal cache, and this check runs on
 * every API call (HMACs per secret and subject).
 */
const keysBySession = new WeakMap<Session, RevocationKeys>();
function revocationKeys(config: Config, session: Session): RevocationKeys {
  let keys = keysBySession.get(session);
  if (!keys || keys.config !== config) {
    const logouts = [...keysOf(config, { kind: 'bcl-sub', iss: session.iss, sub: session.sub, onlyWithoutSid: false })];
    if (session.idpSid) logouts.push(...keysOf(config, { kind: 'bcl-sid', iss: session.iss, sid: session.idpSid }));
    else logouts.push(...keysOf(config, { kind: 'bcl-sub', iss: session.iss, sub: session.sub, onlyWithoutSid: true }));
    logouts.push(...keysOf(config, { kind: 'revoked-before' }));
    const ended = keysOf(config, { kind: 'ended', sessionId: session.id });
    keys = { config, ended, logouts, all: [...ended, ...logouts] };
    keysBySession.set(session, keys);
  }
  return keys;
}

/**
 * The cached read: on Redis, repeated checks of the same session cost no round trip while
 * no other instance writes one of its keys (the server pushes an invalidation when one
 * does), and fail closed when the connection drops (cache flushed). Both the per-request
 * check and the stream watch read through it.
 */
function readMarks(store: KeyValueStore, keys: readonly string[]): Promise<Array<string | undefined>> {
  return store.getManyCached ? store.getManyCached(keys) : store.getMany(keys);
}

/** Whether the values read for `keys.all` say this session is over. */
function endedBy(keys: RevocationKeys, values: ReadonlyArray<string | undefined>, session: Session): boolean {
  const endedCount = keys.ended.length;
  return values.some((value, i) => value !== undefined && (i < endedCount || session.createdAt <= Number(value)));
}

export async function isSessionEnded(store: KeyValueStore, config: Config, session: Session): Promise<boolean> {
  const keys = revocationKeys(config, session);
  return endedBy(keys, await readMarks(store, keys.all), session);
}

/**
 * `isSessionEnded` for many sessions in one round trip (the stream watch,
 * `lifetime-watch.ts`, checks every watched session of the process together). The same
 * keys and the same rule, so every kind of revocation applies to streams too.
 */
export async function sessionsEnded(store: KeyValueStore, config: Config, sessions: readonly Session[]): Promise<boolean[]> {
  const groups = sessions.map((session) => revocationKeys(config, session));
  const values = await readMarks(store, groups.flatMap((keys) => keys.all));
  let offset = 0;
  return groups.map((keys, i) => {
    const slice = values.slice(offset, offset + keys.all.length);
    offset += keys.all.length;
    return endedBy(keys, slice, sessions[i] as Session);
  });
}

async function setUnderEveryKey(store: KeyValueStore, keys: string[], value: string, ttlSeconds: number): Promise<void> {
  await Promise.all(keys.map((key) => store.set(key, value, ttlSeconds)));
}

/**
 * Raises the instant under each key, never lowers it: a delayed logout token delivered
 * after a newer one must not revive the sessions the newer one ended.
 */
async function raiseUnderEveryKey(store: KeyValueStore, keys: string[], instant: number, ttlSeconds: number): Promise<void> {
  await Promise.all(
    keys.map(async (key) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = await store.get(key);
        if (current !== undefined && Number(current) >= instant) return;
        if (await store.compareAndSet(key, current, String(instant), ttlSeconds)) return;
      }
      // Five writers in a row moved it: theirs are newer instants, or equal ones.
    }),
  );
}

/** Ends this session (every copy of its cookie) for as long as its cookie could still be presented. */
export async function endSession(store: KeyValueStore, config: Config, session: Session): Promise<void> {
  const remaining = Math.ceil((session.createdAt + config.session.absoluteTimeout * 1000 - Date.now()) / 1000);
  await setUnderEveryKey(store, keysOf(config, { kind: 'ended', sessionId: session.id }), '1', Math.max(1, remaining));
}

/**
 * What a verified logout token ends (§2.7): with `sid`, every broker session of that
 * provider session, plus the sessions of `sub` whose ID token had no `sid` (those cannot
 * be matched by sid); without `sid`, every session of `sub`. Sessions created at or
 * before `endedAt` (epoch milliseconds) are over.
 */
export async function endByLogoutToken(
  store: KeyValueStore,
  config: Config,
  claims: { iss: string; sid?: string; sub?: string },
  endedAt: number,
): Promise<void> {
  const keys: string[] = [];
  if (claims.sid) keys.push(...keysOf(config, { kind: 'bcl-sid', iss: claims.iss, sid: claims.sid }));
  if (claims.sub) keys.push(...keysOf(config, { kind: 'bcl-sub', iss: claims.iss, sub: claims.sub, onlyWithoutSid: !!claims.sid }));
  // A cookie lives at most the absolute timeout; so must the mark that kills it.
  await raiseUnderEveryKey(store, keys, endedAt, config.session.absoluteTimeout);
}

/**
 * `POST /ops/revoke {"createdBefore"}`: every session created before `instant` (epoch
 * milliseconds) is over, on every instance at its next check. Raise-only, like a logout
 * token's instant: a delayed or repeated call with an earlier instant revives nothing.
 * Kept for the absolute timeout: by then every session it could end has expired anyway.
 */
export async function endCreatedBefore(store: KeyValueStore, config: Config, instant: number): Promise<void> {
  // Sessions created *before* the instant: the check ends those created at or before its value.
  await raiseUnderEveryKey(store, keysOf(config, { kind: 'revoked-before' }), instant - 1, config.session.absoluteTimeout);
}
