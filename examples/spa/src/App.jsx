/**
 * A small app as a team would have it, moved behind the broker: it has no OAuth code and
 * never sees a token. It signs in with `login()`, knows the user from `useSession()`,
 * calls its API with `brokerFetch` (the broker attaches the token), and routes by the
 * History API, so `/orders/42` is a deep link the broker answers with index.html.
 */
import { useEffect, useState } from 'react';
import { brokerFetch, login, logout } from 'cloakroom-client';
import { useSession } from 'cloakroom-client/react';
import { Banner } from './Banner.jsx';

function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const go = (to) => {
    history.pushState(null, '', to);
    setPath(to);
  };
  return [path, go];
}

/** Several calls at once, one of them a POST: a session that ended meanwhile sends the browser to sign in once, and the POST is never sent again. */
function saveNoteAndRefresh(id) {
  const order = `/api/demo/orders/${encodeURIComponent(id)}`;
  return Promise.all([
    brokerFetch(`${order}/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ note: 'call back' }) }),
    brokerFetch(order),
    brokerFetch(`${order}/items`),
  ]);
}

function Order({ id }) {
  const [answer, setAnswer] = useState(undefined);
  const [calls, setCalls] = useState(0);
  useEffect(() => {
    let live = true;
    brokerFetch(`/api/demo/orders/${encodeURIComponent(id)}`)
      .then(async (response) => {
        const body = await response.json();
        if (live) setAnswer({ status: response.status, body });
      })
      .catch(() => live && setAnswer({ status: 0, body: { error: 'network' } }));
    return () => {
      live = false;
    };
  }, [id, calls]);
  return (
    <section>
      <h2>Order {id}</h2>
      <p data-testid="order-status">{answer ? String(answer.status) : 'loading'}</p>
      <p data-testid="order-path">{answer?.body?.path ?? ''}</p>
      <p data-testid="order-subject">{answer?.body?.subject ?? ''}</p>
      <button data-testid="reload-order" onClick={() => setCalls((n) => n + 1)}>
        Reload
      </button>
      <button data-testid="save-note" onClick={() => saveNoteAndRefresh(id)}>
        Save a note
      </button>
    </section>
  );
}

export function App() {
  const session = useSession();
  const [path, go] = usePath();
  const order = /^\/orders\/([^/]+)$/.exec(path);
  return (
    <main>
      <Banner />
      <p data-testid="session">
        {session.status === 'authenticated' ? `Signed in as ${session.user.name ?? session.user.sub}` : session.status === 'loading' ? 'Loading' : 'Signed out'}
      </p>
      {session.status === 'unauthenticated' && (
        <button data-testid="login" onClick={() => login()}>
          Sign in
        </button>
      )}
      {session.status === 'authenticated' && (
        <button data-testid="logout" onClick={() => logout()}>
          Sign out
        </button>
      )}
      <nav>
        <a href="/orders/42" onClick={(e) => (e.preventDefault(), go('/orders/42'))}>
          Order 42
        </a>
      </nav>
      {order && session.status === 'authenticated' && <Order id={order[1]} />}
    </main>
  );
}
