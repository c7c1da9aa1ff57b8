import type { Config } from '../config/load.ts';
import { jsonResponse } from '../http/responses.ts';
import { checkCsrf } from '../security/csrf.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { clearSession, loadSession, sessionExpiresAt, writeSession } from './manager.ts';

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
  let session = loaded.session;
  if (loaded.needsWrite) {
    session = { ...session, touchedAt: Date.now() };
    for (const c of await writeSession(session, loaded.present, config)) headers.append('set-cookie', c);
  }
  return jsonResponse(
    {
      authenticated: true,
      user: session.user,
      expiresAt: Math.floor(sessionExpiresAt(session, config.session) / 1000),
    },
    200,
    headers,
  );
}
