import type { KeyValueStore } from '../stores/store.ts';
import type { Session } from './session.ts';
import { digest } from './codec.ts';

/**
 * Revocation for stateless cookies. A sealed cookie stays cryptographically valid
 * until it expires, so a copy taken before sign-out would still work. The store keeps
 * what has ended for as long as a cookie could live (the absolute timeout):
 *  - `ended:<session id>` — this session, ended by logout;
 *  - `bcl:sid:<hash>` / `bcl:sub:<hash>` — when a back-channel logout ended every
 *    session of a provider session or of a user; a session created before that
 *    instant is over (OpenID Connect Back-Channel Logout 1.0 §2.7).
 * Keys carry hashes, not identifiers, so a shared store does not learn who is signed in.
 */
const endedKey = (sessionId: string) => `ended:${sessionId}`;
const providerSessionKey = (iss: string, sid: string) => `bcl:sid:${digest(`${iss}\n${sid}`)}`;
const subjectKey = (iss: string, sub: string) => `bcl:sub:${digest(`${iss}\n${sub}`)}`;

/**
 * The keys to check for a session, hashed once per unsealed session: the same frozen
 * object serves a cookie's every request from the unseal cache, and this check runs on
 * every API call.
 */
const keysBySession = new WeakMap<Session, string[]>();
function revocationKeys(session: Session): string[] {
  let keys = keysBySession.get(session);
  if (!keys) {
    keys = [endedKey(session.id), subjectKey(session.iss, session.sub)];
    if (session.idpSid) keys.push(providerSessionKey(session.iss, session.idpSid));
    keysBySession.set(session, keys);
  }
  return keys;
}

export async function isSessionEnded(store: KeyValueStore, session: Session): Promise<boolean> {
  const [ended, ...logoutTimes] = await store.getMany(revocationKeys(session));
  if (ended !== undefined) return true;
  return logoutTimes.some((at) => at !== undefined && session.createdAt <= Number(at));
}

export async function endSession(store: KeyValueStore, session: Session, ttlSeconds: number): Promise<void> {
  await store.set(endedKey(session.id), '1', ttlSeconds);
}

export async function endProviderSession(store: KeyValueStore, iss: string, sid: string, ttlSeconds: number): Promise<void> {
  await store.set(providerSessionKey(iss, sid), String(Date.now()), ttlSeconds);
}

export async function endSubjectSessions(store: KeyValueStore, iss: string, sub: string, ttlSeconds: number): Promise<void> {
  await store.set(subjectKey(iss, sub), String(Date.now()), ttlSeconds);
}
