import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import { storeKeys } from '../stores/keys.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { seal, unseal } from './codec.ts';
import type { Session } from './session.ts';

/**
 * The ID token kept for RP-initiated logout's `id_token_hint`, only with
 * OIDC_END_SESSION_HINT=id_token (providers such as Okta require it). It lives in the
 * store, sealed, under a keyed hash of the session id, for the session's lifetime — never
 * in the cookie, where it would weigh several KB with many group claims (AUDIT.md M2).
 * With the default (`client_id`) nothing is kept: the logout URL carries no ID token,
 * which would otherwise sit in browser history and the provider's access logs (L10).
 */
export async function keepIdTokenHint(store: KeyValueStore, config: Config, session: Session, idToken: string | undefined): Promise<void> {
  if (config.endSessionHint !== 'id_token' || !idToken) return;
  const ttl = Math.max(1, Math.ceil((session.createdAt + config.session.absoluteTimeout * 1000 - Date.now()) / 1000));
  const sealed = await seal({ idToken }, config.session, ttl);
  for (const key of storeKeys(config, 'id-token', session.id)) await store.set(key, sealed, ttl);
}

/**
 * The ID token kept for this session, removed from the store. Logout never waits on
 * it: a store that cannot answer means a logout URL without the hint, not a user kept
 * signed in.
 */
export async function takeIdTokenHint(store: KeyValueStore, config: Config, session: Session): Promise<string | undefined> {
  if (config.endSessionHint !== 'id_token') return undefined;
  const keys = storeKeys(config, 'id-token', session.id);
  try {
    const sealed = (await store.getMany(keys)).find((value) => value !== undefined);
    for (const key of keys) await store.delete(key);
    if (!sealed) return undefined;
    const opened = await unseal<{ idToken?: unknown }>(sealed, config.session, config.session.absoluteTimeout);
    return 'data' in opened && typeof opened.data.idToken === 'string' ? opened.data.idToken : undefined;
  } catch (error) {
    log.warn('id_token_hint_unavailable', { errorName: error instanceof Error ? error.name : 'unknown' });
    return undefined;
  }
}
