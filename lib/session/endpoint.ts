import type { Config } from '../config/load.ts';
import { jsonResponse } from '../http/responses.ts';
import { checkCsrf } from '../security/csrf.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { sessionToWrite } from '../tokens/manager.ts';
import { clearSession, loadSession, rewriteSession, sessionExpiresAt, writeSessionWithinBudget } from './manager.ts';

/**
 * `GET /auth/session`: who is signed in, for the page's JavaScript. Only the
 * allow-listed claims leave; never a token. A dead cookie (ended, expired, unreadable)
 * is cleared so the browser stops sending it.
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
  if (loaded.needsWrite) {
    // Recording activity must not write back a refresh token that another request has
    // spent meanwhile: the newest session known is what the browser should hold.
    const newest = await sessionToWrite(session, config, store);
    const cookies = !newest ? [] : newest === session ? await rewriteSession(loaded, config) : await writeSessionWithinBudget(newest, loaded.present, config);
    for (const c of cookies) headers.append('set-cookie', c);
  }
  return jsonResponse(
    {
      authenticated: true,
      user: session.user,
      // A touched session's idle clock restarts now.
      expiresAt: Math.floor(sessionExpiresAt(loaded.needsWrite ? { ...session, touchedAt: Date.now() } : session, config.session) / 1000),
    },
    200,
    headers,
  );
}
