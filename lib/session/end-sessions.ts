import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import { revokeRefreshTokens } from '../oidc/revoke.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { forgetRefreshRecord, liveRefreshTokens } from '../tokens/manager.ts';
import { forgetSession } from './manager.ts';
import { endSession } from './revocation.ts';
import { entrySession, unindexSessions, type IndexEntry } from './session-index.ts';
import { takeIdTokenHint } from './storage-hint.ts';
import { sessionHandle, type Session } from './session.ts';
import type { SessionEndReason } from '../ops/metrics.ts';

/**
 * Ends indexed sessions of one user from elsewhere (another of the user's sessions, or an
 * operator), in the order that fails safe:
 *  1. the `ended` mark, so every copy of the cookie on every instance is dead at its next
 *     check — before anything else, so a store failure later leaves no live session;
 *  2. the refresh tokens that may still be live (the record's, and the sign-in's kept in
 *     the entry for a session that never refreshed) are collected, then the refresh
 *     record, the server-side record and the logout hint are removed;
 *  3. the entries leave the index;
 *  4. the refresh tokens are revoked at the provider (RFC 7009), best effort: logged,
 *     never failing the call, since the sessions are already over here.
 * Answers how many sessions were ended.
 */
export async function endIndexedSessions(
  store: KeyValueStore,
  config: Config,
  user: { iss: string; sub: string },
  entries: readonly IndexEntry[],
  cause: 'user' | 'operator',
): Promise<number> {
  if (entries.length === 0) return 0;
  const refreshTokens = new Set<string>();
  for (const entry of entries) {
    const session = entrySession(user.iss, user.sub, entry);
    await endSession(store, config, session);
    for (const token of await liveRefreshTokens(session, config, store)) refreshTokens.add(token);
    await forgetRefreshRecord(session, config, store);
    await forgetSession(session, config, store);
    await takeIdTokenHint(store, config, session);
    log.security('session_revoked', { session: sessionHandle(session), by: cause });
  }
  await unindexSessions(store, config, user.iss, user.sub, new Set(entries.map((e) => e.id)));
  metrics.sessionsEnded.inc({ reason: 'revoked' }, entries.length);
  const revoked = await revokeRefreshTokens(config, [...refreshTokens]);
  log.info('sessions_revoked', { sessionCount: entries.length, tokenCount: refreshTokens.size, revokedCount: revoked, by: cause });
  return entries.length;
}

/**
 * Ends one session from within a request of its own (stolen-session detection), as
 * logout does but without a browser to redirect: the `ended` mark first (every copy of
 * the cookie on every instance is dead at its next check, and streams close), then the
 * refresh record, the server-side record, the logout hint and the index entry, then the
 * live refresh tokens revoked at the provider (RFC 7009), best effort — whichever holder
 * is the thief, neither can refresh again.
 */
export async function endSessionEverywhere(store: KeyValueStore, config: Config, session: Session, reason: SessionEndReason): Promise<void> {
  await endSession(store, config, session);
  const refreshTokens = await liveRefreshTokens(session, config, store);
  await forgetRefreshRecord(session, config, store);
  await forgetSession(session, config, store);
  await takeIdTokenHint(store, config, session);
  await unindexSessions(store, config, session.iss, session.sub, new Set([session.id]));
  metrics.sessionsEnded.inc({ reason });
  const revoked = await revokeRefreshTokens(config, refreshTokens);
  log.security('session_ended', { session: sessionHandle(session), reason, revokedCount: revoked });
}
