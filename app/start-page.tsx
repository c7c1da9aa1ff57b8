'use client';

import { useCallback, useEffect, useState } from 'react';

interface SessionInfo {
  authenticated: boolean;
  user?: { sub: string; name?: string; email?: string };
  expiresAt?: number;
}

interface ApiCall {
  route: string;
  status: number;
  body: unknown;
  /** Epoch milliseconds when the answer arrived. */
  at: number;
}

/** Every call to the broker carries X-CSRF: 1 (see README, "Security model"). */
async function brokerFetch(path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(path, { headers: { 'X-CSRF': '1' }, cache: 'no-store' });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: show as text
  }
  return { status: response.status, body };
}

/**
 * The start page's interactive part. `apiPaths` are the configured routes' paths (GET
 * routes only), passed by the server page: paths alone, never an upstream URL, so the
 * page shows nothing of the network behind the broker.
 */
export function StartPage({ apiPaths }: { apiPaths: string[] }) {
  const [session, setSession] = useState<SessionInfo | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [call, setCall] = useState<ApiCall | undefined>();
  const [busy, setBusy] = useState(false);

  const refresh = useCallback(async () => {
    try {
      const { status, body } = await brokerFetch('/auth/session');
      if (status !== 200) throw new Error(`session check answered ${status}`);
      setSession(body as SessionInfo);
      setError(undefined);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, []);

  useEffect(() => {
    // The provider sends the browser back from sign-out with `?state=`: nothing to show.
    if (window.location.search.includes('state=')) window.history.replaceState(null, '', window.location.pathname);
    // eslint-disable-next-line react-hooks/set-state-in-effect -- loading the session once on mount
    void refresh();
  }, [refresh]);

  const callApi = async (route: string) => {
    setBusy(true);
    try {
      const { status, body } = await brokerFetch(route);
      setCall({ route, status, body, at: Date.now() });
      if (status === 401) await refresh();
    } finally {
      setBusy(false);
    }
  };

  return (
    <main>
      <h1>Cloakroom</h1>
      <p className="lead">
        A session broker: the server signs you in and holds the tokens. This page only ever sees an encrypted,
        HttpOnly cookie it cannot read.
      </p>

      <section className="card" aria-live="polite">
        <h2>Session</h2>
        {error && <p className="error">Could not reach the broker: {error}</p>}
        {!session && !error && <p className="muted">Checking…</p>}
        {session && !session.authenticated && (
          <>
            <p className="status" data-testid="status">
              <span className="dot" /> Signed out
            </p>
            <div className="actions">
              <a className="button" href="/auth/login?returnTo=/" data-testid="sign-in">
                Sign in
              </a>
            </div>
          </>
        )}
        {session?.authenticated && session.user && (
          <>
            <p className="status" data-testid="status">
              <span className="dot on" /> Signed in
            </p>
            <dl>
              <dt>Name</dt>
              <dd data-testid="user-name">{session.user.name ?? '—'}</dd>
              <dt>Email</dt>
              <dd>{session.user.email ?? '—'}</dd>
              <dt>Subject</dt>
              <dd>
                <code>{session.user.sub}</code>
              </dd>
              <dt>Session ends</dt>
              <dd>{session.expiresAt ? new Date(session.expiresAt * 1000).toLocaleString() : '—'}</dd>
            </dl>
            <form method="post" action="/auth/logout" className="actions">
              <button type="submit" className="secondary" data-testid="sign-out">
                Sign out
              </button>
            </form>
          </>
        )}
      </section>

      <section className="card">
        <h2>Call an API through the broker</h2>
        <p className="muted">
          The broker attaches a short-lived access token for each API&apos;s audience and forwards the call. The
          API answers with what it saw in the token — the token itself never comes back.
        </p>
        {apiPaths.length === 0 ? (
          <p className="muted" data-testid="no-routes">
            No API routes are configured (BFF_ROUTES).
          </p>
        ) : (
          <div className="actions">
            {apiPaths.map((path, i) => (
              <button
                key={path}
                type="button"
                className={i === 0 ? undefined : 'secondary'}
                disabled={busy}
                onClick={() => callApi(path)}
                data-testid={`call-${path.split('/').filter(Boolean).slice(1).join('-') || 'api'}`}
              >
                Call {path}
              </button>
            ))}
          </div>
        )}
        {call && <TokenSummary body={call.body} at={call.at} />}
        {call && (
          <pre data-testid="api-result">
            {`GET ${call.route} → ${call.status}\n${JSON.stringify(call.body, null, 2)}`}
          </pre>
        )}
      </section>
    </main>
  );
}

/** What the API saw in its token, as the demo API reports it: audience, scopes, expiry. */
function TokenSummary({ body, at }: { body: unknown; at: number }) {
  if (!body || typeof body !== 'object' || !('audience' in body)) return null;
  const seen = body as { api?: string; audience?: string | string[]; scope?: string; expiresAt?: number; grantType?: string; dpopBound?: boolean; tokenJkt?: string; htu?: string };
  const expiresIn = seen.expiresAt ? Math.max(0, Math.round(seen.expiresAt - at / 1000)) : undefined;
  return (
    <dl data-testid="token-summary">
      <dt>API</dt>
      <dd>{seen.api ?? '—'}</dd>
      <dt>Token audience</dt>
      <dd>
        <code>{Array.isArray(seen.audience) ? seen.audience.join(', ') : seen.audience}</code>
      </dd>
      <dt>Scopes</dt>
      <dd>{seen.scope ?? '—'}</dd>
      <dt>Obtained by</dt>
      <dd data-testid="token-obtained-by">
        {seen.grantType === 'token-exchange' ? 'token exchange (RFC 8693): narrowed to this API and scope' : 'the sign-in (refreshed as needed)'}
      </dd>
      <dt>Token expires</dt>
      <dd>{expiresIn === undefined ? '—' : `in ${expiresIn} s (the broker renews it before then)`}</dd>
      <dt>Sender-constrained</dt>
      <dd data-testid="dpop-bound">
        {seen.dpopBound
          ? `DPoP-bound (RFC 9449): key thumbprint ${seen.tokenJkt ?? '?'}, proof checked for ${seen.htu ?? '?'}`
          : 'no: a Bearer token'}
      </dd>
    </dl>
  );
}
