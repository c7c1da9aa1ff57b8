/**
 * Streams end with their session (CONTRACT.md): a server-sent-events answer, a long
 * download or a WebSocket opened on a session's behalf is closed when that session ends
 * on any instance. A sealed cookie is checked only when a request presents it; a stream
 * presents it once, at its opening, so without this watch a stream opened before a
 * logout would go on delivering the user's data to whoever holds the tab.
 *
 * One timer per process, for every watched session together: each tick reads the
 * revocation entries of all of them in batches (`sessionsEnded`, one `getMany` per
 * batch), so a thousand open streams cost a few store round trips every half second,
 * not a thousand. The timer exists only while something is watched, and is unref'd: an
 * open watch never keeps the process alive.
 *
 * Decisions (README, "Streams end with their session"):
 *  - Idle timeout: a stream is activity only at its opening. It is ended at the idle
 *    deadline its session had then (`touchedAt` + SESSION_IDLE_TIMEOUT), however busy
 *    it is: the idle timeout is there for the tab left open on an unattended machine,
 *    which is exactly where a stream keeps flowing. A page still in use makes calls or
 *    reconnects (EventSource does so itself), and the reconnect, with the current
 *    cookie, is watched to that cookie's deadline. The absolute timeout always ends it.
 *  - The store unreachable is not a session ending: a Redis blip must not cut every
 *    stream of the process. A stream whose session the store has not been able to
 *    confirm as live for STORE_OUTAGE_LIMIT_MS (30 s) is ended then: a longer outage
 *    would let a logged-out stream run unchecked, so it fails closed, eventually.
 */
import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { sessionsEnded } from './revocation.ts';
import type { Session, SessionLifetimes } from './session.ts';

export type StreamEndReason = 'ended' | 'idle' | 'expired';

/** How often every watched session is checked: "within a second" with room for one store round trip. */
export const WATCH_INTERVAL_MS = 500;
/** Sessions per `getMany` (each reads a handful of keys per session secret). */
export const WATCH_BATCH_SIZE = 200;
/** How long streams outlive a store that cannot confirm their session (see above). */
export const STORE_OUTAGE_LIMIT_MS = 30_000;

interface Watch {
  session: Session;
  config: Config;
  store: KeyValueStore;
  onEnded: (reason: StreamEndReason) => void;
  /** Epoch ms the store last said this session is live (the watch's start counts). */
  confirmedAt: number;
  done: boolean;
}

const watches = new Set<Watch>();
let timer: NodeJS.Timeout | undefined;
let ticking = false;

/** Whether the session has reached its absolute or idle deadline at `now` (epoch ms). */
export function timeoutReason(session: Pick<Session, 'createdAt' | 'touchedAt'>, lifetimes: SessionLifetimes, now: number): StreamEndReason | undefined {
  if (now >= session.createdAt + lifetimes.absoluteTimeout * 1000) return 'expired';
  if (now >= session.touchedAt + lifetimes.idleTimeout * 1000) return 'idle';
  return undefined;
}

/** Whether a store outage has lasted long enough that a stream must be ended unconfirmed. */
export function outageTooLong(confirmedAt: number, now: number): boolean {
  return now - confirmedAt >= STORE_OUTAGE_LIMIT_MS;
}

/**
 * Calls onEnded once, within about a second, when this session ends on any instance
 * (logout, back-channel logout, /auth/sessions/revoke, /ops/revoke: whatever makes
 * lib/session/revocation.ts isSessionEnded true), or reaches its idle or absolute timeout.
 * Returns a function that stops watching.
 */
export function watchSession(session: Session, config: Config, store: KeyValueStore, onEnded: (reason: StreamEndReason) => void): () => void {
  const watch: Watch = { session, config, store, onEnded, confirmedAt: Date.now(), done: false };
  watches.add(watch);
  if (!timer) {
    timer = setInterval(() => void tick(), WATCH_INTERVAL_MS);
    timer.unref();
  }
  return () => {
    watch.done = true;
    forget(watch);
  };
}

/** Sessions being watched in this process (tests, diagnostics). */
export function watchedSessions(): number {
  return watches.size;
}

function forget(watch: Watch): void {
  watches.delete(watch);
  if (watches.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

function end(watch: Watch, reason: StreamEndReason): void {
  if (watch.done) return;
  watch.done = true;
  forget(watch);
  try {
    watch.onEnded(reason);
  } catch (error) {
    log.error('stream_end_failed', { errorName: error instanceof Error ? error.name : typeof error });
  }
}

async function tick(): Promise<void> {
  // A slow store must not pile up overlapping rounds of reads.
  if (ticking) return;
  ticking = true;
  try {
    const now = Date.now();
    // Grouped by store and configuration (tests may run several; production has one of each).
    const groups = new Map<KeyValueStore, Map<Config, Watch[]>>();
    for (const watch of watches) {
      const reason = timeoutReason(watch.session, watch.config.session, now);
      if (reason) {
        end(watch, reason);
        continue;
      }
      let byConfig = groups.get(watch.store);
      if (!byConfig) groups.set(watch.store, (byConfig = new Map()));
      const list = byConfig.get(watch.config);
      if (list) list.push(watch);
      else byConfig.set(watch.config, [watch]);
    }
    const rounds: Array<Promise<void>> = [];
    for (const [store, byConfig] of groups) {
      for (const [config, list] of byConfig) {
        for (let i = 0; i < list.length; i += WATCH_BATCH_SIZE) rounds.push(checkBatch(store, config, list.slice(i, i + WATCH_BATCH_SIZE), now));
      }
    }
    await Promise.all(rounds);
  } finally {
    ticking = false;
  }
}

async function checkBatch(store: KeyValueStore, config: Config, batch: Watch[], now: number): Promise<void> {
  let ended: boolean[];
  try {
    ended = await sessionsEnded(store, config, batch.map((watch) => watch.session));
  } catch (error) {
    // Unreachable (or failing): nothing is learnt. Only an outage longer than the limit ends streams.
    log.warn('stream_watch_store_unavailable', { streams: batch.length, errorName: error instanceof Error ? error.name : typeof error });
    for (const watch of batch) if (outageTooLong(watch.confirmedAt, now)) end(watch, 'ended');
    return;
  }
  for (let i = 0; i < batch.length; i++) {
    if (ended[i]) end(batch[i], 'ended');
    else batch[i].confirmedAt = now;
  }
}
