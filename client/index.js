/**
 * cloakroom-client: the browser side of the Cloakroom broker (a backend for frontend).
 * The page never sees a token: the broker keeps them server-side and attaches them to
 * API calls made through it, on the page's own origin. This module is all an app needs
 * instead of an OAuth library. Dependency-free; also served by the broker at
 * GET /auth/client.js.
 */

/** The broker's anti-forgery header (CONTRACT.md): a cross-site page cannot send it without a CORS preflight. */
const CSRF = { 'X-CSRF': '1' };
const CHANNEL_NAME = 'cloakroom-session';

/** @type {import('./index.js').SessionState} */
let state = { status: 'loading' };
const listeners = new Set();
let redirecting = false;
let pending;

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL_NAME) : undefined;
if (channel) {
  channel.onmessage = (event) => {
    const message = event.data;
    // Another tab signed out: the cookie is gone for this tab too (same origin).
    if (message && message.type === 'logout') update({ status: 'unauthenticated' }, false);
    // Another tab signed in (or its session changed): learn ours from the broker, never from the message.
    if (message && message.type === 'changed') void getSession().catch(() => undefined);
  };
}

// A page restored from the back-forward cache after a sign-in redirect may need to start another.
if (typeof addEventListener === 'function') addEventListener('pageshow', (event) => event.persisted && (redirecting = false));

function update(next, broadcast) {
  const before = state;
  state = next;
  if (broadcast && channel && (before.status === 'authenticated') !== (next.status === 'authenticated') && before.status !== 'loading') {
    channel.postMessage({ type: 'changed' });
  }
  for (const listener of listeners) listener(state);
}

/** `location.pathname + search + hash`: always a same-origin path the broker's returnTo check accepts. */
function here() {
  return location.pathname + location.search + location.hash;
}

/** The current session state (what `useSession` renders). */
export function getSnapshot() {
  return state;
}

/** Calls `listener(state)` on every change, this tab's or another's. Returns the unsubscribe function. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** `GET /auth/session`: `{authenticated: true, user, expiresAt}` or `{authenticated: false}`. Concurrent calls share one request. */
export function getSession() {
  pending ??= fetch('/auth/session', { headers: CSRF, credentials: 'same-origin', cache: 'no-store' })
    .then(async (response) => {
      if (!response.ok) throw new Error(`session check failed: HTTP ${response.status}`);
      const session = await response.json();
      update(session.authenticated ? { status: 'authenticated', user: session.user, expiresAt: session.expiresAt } : { status: 'unauthenticated' }, true);
      return session;
    })
    .finally(() => {
      pending = undefined;
    });
  return pending;
}

/**
 * Sends the browser to sign in, back to `returnTo` (default: this page) afterwards.
 * Once: concurrent callers (several API calls failing together) start one sign-in.
 */
export function login(returnTo = here()) {
  if (redirecting) return;
  redirecting = true;
  // A full navigation on purpose: /auth/login is the broker's redirect to the provider, not a page of the app.
  // eslint-disable-next-line @next/next/no-location-assign-relative-destination
  location.assign(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
}

/**
 * Signs out: the contract's same-origin `POST /auth/logout`, as a form navigation (the
 * broker answers 303 to the provider's end-session page, which a fetch could not
 * follow). Other tabs are told first, so that they stop showing the user at once.
 */
export function logout() {
  if (channel) channel.postMessage({ type: 'logout' });
  update({ status: 'unauthenticated' }, false);
  const form = document.createElement('form');
  form.method = 'POST';
  form.action = '/auth/logout';
  document.body.append(form);
  form.submit();
}

/**
 * `fetch` for the broker's API routes: same-origin credentials and the `X-CSRF: 1`
 * header. A 401 means the session is over: the browser is sent to sign in (once, see
 * `login`), and the 401 is still returned. Nothing is ever retried or replayed: after
 * sign-in the page loads afresh, so a POST is never sent twice behind the user's back.
 */
export async function brokerFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('X-CSRF', '1');
  const response = await fetch(input, { ...init, headers, credentials: 'same-origin' });
  if (response.status === 401) {
    update({ status: 'unauthenticated' }, true);
    login();
  }
  return response;
}

/** Called with every change of the session state, in this tab or another. Returns the unsubscribe function. */
export const onSessionChange = subscribe;
