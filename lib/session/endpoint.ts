import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { jsonResponse } from '../http/responses.ts';
import { checkCsrf } from '../security/csrf.ts';
import { checkSessionOrigin } from '../security/session-anomaly.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { reconcileSession } from '../tokens/manager.ts';
import { clearSession, loadSession, rewriteSession, sessionExpiresAt, writeSessionWithinBudget } from './manager.ts';

/**
 * `GET /auth/session`: who is signed in, for the page's JavaScript. Only the
 * allow-listed claims leave; never a token. A dead cookie (ended, expired, unreadable)
 * is cleared so the browser stops sending it.
 *
 * It reports the state the proxy will enforce (AUDIT M3): a cookie holding a refresh
 * token that its session's record has moved past reads `authenticated: false` (and is
 * handled as the proxy would: security event, SESSION_ANOMALY_POLICY); a cookie that is
 * merely behind — an answer that never reached the browser — gets the newest session.
 */
export async function handleSession(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  checkCsrf(request, config);
  const loaded = await loadSession(request, config, store);
  const headers = new Headers();
  if (!loaded.session) {
    if (loaded.present.length > 0) for (const c of clearSession(loaded.present, config)) headers.append('set-cookie', c);
    return jsonResponse({ authenticated: false }, 200, headers);
  }
  const session = loaded.session;
  let newest;
  try {
    await checkSessionOrigin(request, session, config, store);
    newest = await reconcileSession(session, config, store);
  } catch (error) {
    if (!(error instanceof BrokerError) || error.code !== 'session_expired') throw error;
    // Cleared only when the session itself is over; a copy refused for itself alone
    // leaves the cookie alone (the browser may hold a newer one already).
    if (error.endsSession) for (const c of clearSession(loaded.present, config)) headers.append('set-cookie', c);
    return jsonResponse({ authenticated: false }, 200, headers);
  }
  if (newest !== session) {
    for (const c of await writeSessionWithinBudget(newest, loaded.present, config)) headers.append('set-cookie', c);
  } else if (loaded.needsWrite) {
    for (const c of await rewriteSession(loaded, config)) headers.append('set-cookie', c);
  }
  const written = newest !== session || loaded.needsWrite;
  return jsonResponse(
    {
      authenticated: true,
      user: session.user,
      // A touched session's idle clock restarts now.
      expiresAt: Math.floor(sessionExpiresAt(written ? { ...session, touchedAt: Date.now() } : session, config.session) / 1000),
    },
    200,
    headers,
  );
}
