/**
 * BFF_FRONTEND_AUTH=required: the app's pages are for signed-in browsers. Only HTML
 * navigations are gated — a script, a style or an image the signed-out sign-in page or
 * the app shell needs is not, and sending a browser's `<script src>` to the provider
 * would only break the page. The session is checked the way the proxy checks it
 * (lib/session/manager.ts `loadSession`: the cached unseal, lifetimes, revocation), and
 * nothing is written: a page view does not extend a session (API calls do).
 */
import type { Config } from '../config/load.ts';
import { clearSession, loadSession } from '../session/manager.ts';
import { safeReturnTo } from '../security/return-to.ts';
import type { KeyValueStore } from '../stores/store.ts';

/**
 * A top-level (or frame) navigation asking for a page: `Sec-Fetch-Mode: navigate`, or,
 * from a browser that sends no fetch metadata, `Accept: text/html`. `fetch()` and
 * `<script>` send neither (WHATWG Fetch, "navigate" mode; HTML's script fetch).
 */
export function isHtmlNavigation(request: Request): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const mode = request.headers.get('sec-fetch-mode');
  if (mode !== null) return mode === 'navigate';
  return (request.headers.get('accept') ?? '').includes('text/html');
}

/**
 * Undefined when the navigation may proceed; otherwise the redirect to sign in, back to
 * this very page afterwards (`returnTo` is validated as /auth/login validates it: a
 * path that is not a safe same-origin one becomes `/`). A dead cookie is cleared on the
 * way, as the proxy does. A store outage throws (503 `store_unavailable`): the browser
 * is never sent to sign in because Redis blinked.
 */
export async function gateNavigation(request: Request, config: Config, store: KeyValueStore, pathAndQuery: string): Promise<Response | undefined> {
  if (config.frontend?.auth !== 'required') return undefined;
  const loaded = await loadSession(request, config, store);
  if (loaded.session) return undefined;
  const headers = new Headers({
    location: `/auth/login?returnTo=${encodeURIComponent(safeReturnTo(pathAndQuery))}`,
    'cache-control': 'no-store',
  });
  if (loaded.present.length > 0 && loaded.reason !== 'absent') {
    for (const cookie of clearSession(loaded.present, config)) headers.append('set-cookie', cookie);
  }
  // 302, not 303: the navigation was a GET and stays one.
  return new Response(null, { status: 302, headers });
}
