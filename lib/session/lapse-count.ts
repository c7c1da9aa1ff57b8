import type { Config } from '../config/load.ts';
import { metrics } from '../ops/metrics.ts';
import { canonicalStoreKey } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import type { Session } from './session.ts';

/**
 * Counts a session that lapsed (`cloakroom_sessions_ended_total{reason="idle"|"expired"}`)
 * when a request first presents it after its timeout. A lapse has no event of its own —
 * the cookie simply stops working — so the broker counts it where it notices, once per
 * session on every instance together (SET NX under an HMAC of the session id: the
 * browser may send the dead cookie on several parallel requests before it is cleared).
 * A lapsed session that is never presented again is never counted.
 *
 * Off the request's path: the request is refused either way, and a store that cannot be
 * reached just leaves this one uncounted.
 */
export function countLapse(store: KeyValueStore, config: Config, session: Session, reason: 'idle' | 'expired'): void {
  const key = canonicalStoreKey(config, 'lapse', session.id);
  // Long enough to outlive any copy of the cookie that can still be presented.
  const ttl = Math.max(60, config.session.absoluteTimeout);
  store.setIfAbsent(key, reason, ttl).then(
    (first) => {
      if (first) metrics.sessionsEnded.inc({ reason });
    },
    () => undefined,
  );
}
