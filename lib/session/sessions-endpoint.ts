import { z } from 'zod';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { readJsonBody } from '../http/body.ts';
import { jsonResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { checkCsrf, checkSameOrigin } from '../security/csrf.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { endIndexedSessions } from './end-sessions.ts';
import { clearSession, loadSession, type LoadedSession } from './manager.ts';
import { listed, listHandle, liveIndexEntries, type IndexEntry } from './session-index.ts';
import { sessionHandle, type Session } from './session.ts';

/** A revoke body is a few dozen bytes; anything near this is not one. */
export const MAX_REVOKE_BODY_BYTES = 1024;

/** `{"id": "<handle>"}` or `{"others": true}`, and nothing else (unknown keys refused). */
const revokeBody = z.union([
  z.strictObject({ id: z.string().min(1).max(128) }),
  z.strictObject({ others: z.literal(true) }),
]);

async function signedIn(request: Request, config: Config, store: KeyValueStore): Promise<{ loaded: LoadedSession; session: Session }> {
  const loaded = await loadSession(request, config, store);
  if (!loaded.session) throw new BrokerError('unauthenticated', { publicMessage: 'no session' });
  return { loaded, session: loaded.session };
}

/**
 * `GET /auth/sessions`: the signed-in user's live sessions, newest first (CONTRACT.md).
 * Only the index's metadata leaves: `id` is an opaque handle (not the session id, not
 * the log handle), never a token or a cookie value. Only the caller's own user is read:
 * the index key is derived from the session's (iss, sub), never from the request.
 */
export async function handleListSessions(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  checkCsrf(request, config);
  const { session } = await signedIn(request, config, store);
  const entries = await liveIndexEntries(store, config, session.iss, session.sub);
  return jsonResponse({ sessions: entries.map((entry) => listed(entry, session.id)) });
}

/**
 * `POST /auth/sessions/revoke` ("sign out that device" / "sign out everywhere else"):
 * `X-CSRF: 1` and same-origin evidence (a cross-site page must not end a user's sessions).
 *  - `{"id"}` ends the session with that handle among THIS user's sessions. A handle the
 *    user does not have — another user's, an ended or a made-up one — ends nothing and
 *    answers `{"revoked": 0}`: the same answer as for a stale handle, so the endpoint is
 *    no oracle for other users' handles.
 *  - `{"id"}` of the current session acts as a logout without the redirect: the session
 *    ends everywhere, its refresh token is revoked and the answer clears the cookie.
 *  - `{"others": true}` ends every other session of the user; the current one stays.
 * `200 {"revoked": n}`.
 */
export async function handleRevokeSessions(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  checkCsrf(request, config);
  checkSameOrigin(request, config);
  const { loaded, session } = await signedIn(request, config, store);
  const body = await readJsonBody(request, revokeBody, MAX_REVOKE_BODY_BYTES);
  const entries = await liveIndexEntries(store, config, session.iss, session.sub);
  const user = { iss: session.iss, sub: session.sub };
  const headers = new Headers();

  let targets: IndexEntry[];
  if ('others' in body) {
    targets = entries.filter((entry) => entry.id !== session.id);
  } else {
    targets = entries.filter((entry) => listHandle(entry.id) === body.id);
    if (targets.some((entry) => entry.id === session.id)) {
      for (const cookie of clearSession(loaded.present, config)) headers.append('set-cookie', cookie);
    } else if (targets.length === 0 && body.id === listHandle(session.id)) {
      // The current session, not (or no longer) in the index: it ends all the same.
      targets = [{ id: session.id, createdAt: session.createdAt, lastSeenAt: session.touchedAt, userAgent: '', network: '', idpSid: session.idpSid, refreshToken: session.refreshToken }];
      for (const cookie of clearSession(loaded.present, config)) headers.append('set-cookie', cookie);
    }
  }
  const revoked = await endIndexedSessions(store, config, user, targets, 'user');
  log.info('sessions_revoke_requested', { session: sessionHandle(session), revokedCount: revoked, scope: 'others' in body ? 'others' : 'one' });
  return jsonResponse({ revoked }, 200, headers);
}
