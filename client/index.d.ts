/** What the broker says of the signed-in user (`GET /auth/session`). Never a token. */
export interface SessionUser {
  sub: string;
  name?: string;
  email?: string;
}

export type SessionState =
  | { status: 'loading' }
  | { status: 'authenticated'; user: SessionUser; expiresAt: number }
  | { status: 'unauthenticated' };

export type SessionAnswer = { authenticated: true; user: SessionUser; expiresAt: number } | { authenticated: false };

/** `fetch` with `X-CSRF: 1` and same-origin credentials; a 401 sends the browser to sign in (once). Never retries. */
export function brokerFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
/** `GET /auth/session`; updates the state every subscriber sees. */
export function getSession(): Promise<SessionAnswer>;
/** Sends the browser to `/auth/login?returnTo=<returnTo>` (default: the current page), once. */
export function login(returnTo?: string): void;
/** `POST /auth/logout` as a form navigation; other tabs are signed out too. */
export function logout(): void;
export function getSnapshot(): SessionState;
export function subscribe(listener: (state: SessionState) => void): () => void;
export const onSessionChange: typeof subscribe;
