import type { Config } from '../config/load.ts';
import { digest, seal, unseal } from '../session/codec.ts';
import type { AccessToken } from '../session/session.ts';
import type { KeyValueStore } from '../stores/store.ts';

/**
 * What one refresh produced, kept for the grace window under a hash of the refresh
 * token it consumed. A request that still carries that (now consumed) token adopts
 * this outcome instead of sending the token again: with rotation on, the provider
 * would take a second use for theft and revoke the whole grant (OAuth 2.0 Security
 * BCP, RFC 9700 §4.14.2).
 *
 * The store sees only a hash as key and a sealed value: tokens are never in the clear
 * outside the process, also once the store is shared.
 */
export interface RefreshOutcome {
  refreshToken: string;
  /** '' for the token of no particular resource. */
  resource: string;
  token: AccessToken;
  idToken?: string;
}

export const refreshKey = (refreshToken: string) => digest(refreshToken);
const successorKey = (rtKey: string) => `rt:next:${rtKey}`;
const consumedKey = (rtKey: string) => `rt:used:${rtKey}`;
export const lockKey = (rtKey: string) => `rt:lock:${rtKey}`;

export async function readSuccessor(store: KeyValueStore, rtKey: string, config: Config): Promise<RefreshOutcome | undefined> {
  const sealed = await store.get(successorKey(rtKey));
  if (!sealed) return undefined;
  const opened = await unseal<RefreshOutcome>(sealed, config.session, config.tokens.refreshGrace + 60);
  return 'data' in opened ? opened.data : undefined;
}

/**
 * Records the outcome and, when the provider rotated the token, that the old one is
 * spent. The "spent" mark outlives the grace window (as long as any cookie can live),
 * so that a stale copy of the cookie is refused instead of replayed.
 */
export async function recordOutcome(store: KeyValueStore, rtKey: string, outcome: RefreshOutcome, rotated: boolean, config: Config): Promise<void> {
  const sealed = await seal(outcome, config.session, config.tokens.refreshGrace + 60);
  await store.set(successorKey(rtKey), sealed, config.tokens.refreshGrace);
  if (rotated) await store.set(consumedKey(rtKey), '1', config.session.absoluteTimeout);
}

export async function isConsumed(store: KeyValueStore, rtKey: string): Promise<boolean> {
  return (await store.get(consumedKey(rtKey))) !== undefined;
}
