import { createHmac } from 'node:crypto';
import type { Config } from '../config/load.ts';

/**
 * Store keys: an HMAC of what the key is about, keyed with the session secrets, so that
 * whoever can read the shared store (an operator, a backup, a leaked dump) cannot confirm
 * or enumerate users, sessions or tokens from the keys (`sha256(sub)` of an email or a
 * sequential id is a dictionary lookup away). The store adds its own prefix.
 *
 * Rotation: one key per configured secret, so that an entry written before a secret was
 * added or promoted is still found. Writers write under every key (writes are rare: a
 * logout, a refresh); readers read every key in one round trip. The first key returned
 * is the canonical one (the secret with the lowest id, whatever the order of
 * SESSION_SECRETS), so that instances mid-rotation — the same secrets in another order —
 * agree on it: locks use it alone.
 */
export type StoreKeyKind = 'ended' | 'bcl-sid' | 'bcl-sub' | 'bcl-jti' | 'refresh' | 'refresh-lock' | 'session' | 'index' | 'index-sid' | 'revoked-before' | 'rate' | 'id-token' | 'exchange' | 'exchange-lock' | 'anomaly' | 'lapse';

const keyingSecrets = new WeakMap<Config, string[]>();

function secretsOf(config: Config): string[] {
  let secrets = keyingSecrets.get(config);
  if (!secrets) {
    const ids = Object.keys(config.session.unsealPasswords).map(Number).sort((a, b) => a - b);
    secrets = ids.map((id) => config.session.unsealPasswords[id]);
    keyingSecrets.set(config, secrets);
  }
  return secrets;
}

function mac(secret: string, kind: StoreKeyKind, value: string): string {
  // Domain-separated from the iron seal's use of the same secret by the label.
  return `${kind}:${createHmac('sha256', secret).update(`cloakroom store key\n${kind}\n${value}`).digest('base64url')}`;
}

/** Every key for `value` (one per secret), canonical first. */
export function storeKeys(config: Config, kind: StoreKeyKind, value: string): string[] {
  return secretsOf(config).map((secret) => mac(secret, kind, value));
}

/** The canonical key alone (locks, and anything that must be one key on every instance). */
export function canonicalStoreKey(config: Config, kind: StoreKeyKind, value: string): string {
  return mac(secretsOf(config)[0], kind, value);
}
