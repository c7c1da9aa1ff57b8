/**
 * `useSession()` for React apps: the session state of cloakroom-client, kept in sync
 * with the broker and with other tabs, through React's `useSyncExternalStore`. React is
 * imported from the app (a peer dependency), never bundled here: two copies of React in
 * one page break hooks.
 */
import { useEffect, useSyncExternalStore } from 'react';
import { getSession, getSnapshot, subscribe } from './index.js';

export function useSession() {
  const state = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
  useEffect(() => {
    if (getSnapshot().status === 'loading') getSession().catch(() => undefined);
  }, []);
  return state;
}
