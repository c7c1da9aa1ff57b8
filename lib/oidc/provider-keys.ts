import * as jose from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { log } from '../log.ts';

/**
 * The provider's signing keys (its `jwks_uri`), for what the broker verifies itself: the
 * back-channel logout token. One cache per process and key-set URL, with one bounded
 * policy for refetching:
 *
 *   known `kid`          verified from the cache (refetched in the background of the
 *                        next use once it is older than MAX_AGE_MS)
 *   unknown `kid`        the provider may have rotated: the set is fetched again, but at
 *                        most once per REFETCH_INTERVAL_MS. Within the interval, callers
 *                        wait for the one refetch the interval allows instead of being
 *                        refused — so a genuine logout signed with a key published a
 *                        moment after the last fetch is still accepted — and every
 *                        caller waiting shares that one fetch.
 *
 * A flood of tokens with made-up `kid`s (the endpoint is unauthenticated) therefore costs
 * the provider one fetch per interval, however many tokens arrive, and cannot starve a
 * real logout: it waits at most one interval. jose's `createRemoteJWKSet` refuses
 * instead during its cooldown (30 s), which drops the real logout of a fresh rotation.
 *
 * What openid-client verifies: nothing that needs these keys. ID tokens arrive from the
 * token endpoint over TLS and their signatures are not checked (OpenID Connect Core
 * §3.1.3.7 item 6; openid-client checks them only with `enableNonRepudiationChecks`,
 * which the broker does not turn on), so a rotation at the provider cannot break a
 * sign-in or a refresh. Were that ever turned on, openid-client (oauth4webapi) keeps its
 * own cache per Configuration, refetching an unknown `kid` only once the cache is 60 s
 * old: ID tokens signed with a key younger than that would be refused.
 */

/** An unknown `kid` triggers at most one fetch of the key set per this interval. */
export const REFETCH_INTERVAL_MS = 5_000;
/** A key set older than this is fetched again on its next use (keys that were removed stop verifying). */
const MAX_AGE_MS = 10 * 60_000;
/** The provider's key set is small; anything bigger is refused rather than parsed. */
const MAX_JWKS_BYTES = 256 * 1024;
const FETCH_TIMEOUT_MS = 5_000;

const agent = new Agent({ connect: { timeout: 3_000 }, keepAliveTimeout: 4_000 });

interface KeySetState {
  uri: string;
  /** The last key set fetched; undefined before the first fetch succeeded. */
  keys: jose.JSONWebKeySet | undefined;
  local: ReturnType<typeof jose.createLocalJWKSet> | undefined;
  /** When the last fetch started (epoch ms), successful or not: the interval counts from it. */
  fetchedAt: number;
  /** The one fetch running or scheduled; every caller that needs a fresh set shares it. */
  pending: Promise<void> | undefined;
  /** Fetches made (for tests and logs). */
  fetches: number;
}

// On globalThis: Next.js may evaluate lib/ once per route bundle; the front door has its
// own copy too. One cache (and one interval) per process.
const STATE = Symbol.for('cloakroom.oidc.provider-keys');
const shared = globalThis as { [STATE]?: Map<string, KeySetState> };
const sets: Map<string, KeySetState> = (shared[STATE] ??= new Map());

function stateFor(uri: string): KeySetState {
  let state = sets.get(uri);
  if (!state) {
    state = { uri, keys: undefined, local: undefined, fetchedAt: 0, pending: undefined, fetches: 0 };
    sets.set(uri, state);
  }
  return state;
}

async function download(state: KeySetState): Promise<void> {
  state.fetchedAt = Date.now();
  state.fetches += 1;
  const response = await undiciFetch(state.uri, {
    headers: { accept: 'application/json, application/jwk-set+json' },
    redirect: 'error',
    dispatcher: agent,
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`the provider's jwks_uri answered HTTP ${response.status}`);
  if (text.length > MAX_JWKS_BYTES) throw new Error("the provider's key set is too large");
  const parsed = JSON.parse(text) as unknown;
  if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { keys?: unknown }).keys)) throw new Error("the provider's jwks_uri is not a JWK Set");
  state.keys = parsed as jose.JSONWebKeySet;
  state.local = jose.createLocalJWKSet(state.keys);
}

/**
 * The one fetch the policy allows now, or the next one once the interval is over; shared
 * by every caller meanwhile. A failed fetch leaves the previous set in place.
 */
function refresh(state: KeySetState): Promise<void> {
  if (state.pending) return state.pending;
  const wait = Math.max(0, state.fetchedAt + REFETCH_INTERVAL_MS - Date.now());
  const run = (wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve())
    .then(() => download(state))
    .catch((error: unknown) => {
      log.warn('provider_jwks_fetch_failed', { problem: error instanceof Error ? error.message.slice(0, 120) : 'unknown' });
    })
    .finally(() => {
      state.pending = undefined;
    });
  state.pending = run;
  return run;
}

function selects(state: KeySetState, header: jose.JWSHeaderParameters, token: jose.FlattenedJWSInput): Promise<jose.CryptoKey> | undefined {
  if (!state.local) return undefined;
  try {
    return state.local(header, token) as Promise<jose.CryptoKey>;
  } catch {
    return undefined;
  }
}

/**
 * A jose key resolver for `jwtVerify` over the provider's key set at `uri`, with the
 * policy above. Throws jose's `JWKSNoMatchingKey` when the `kid` is still unknown after
 * the refetch the interval allows.
 */
export function providerKeys(uri: string): jose.JWTVerifyGetKey {
  const state = stateFor(uri);
  return async (header, token) => {
    if (!state.keys || Date.now() - state.fetchedAt > MAX_AGE_MS) await refresh(state);
    const known = await selectKey(state, header, token);
    if (known) return known;
    // Unknown here: perhaps a key the provider has just published. One shared refetch.
    await refresh(state);
    const after = await selectKey(state, header, token);
    if (after) return after;
    throw new jose.errors.JWKSNoMatchingKey();
  };
}

async function selectKey(state: KeySetState, header: jose.JWSHeaderParameters, token: jose.FlattenedJWSInput): Promise<jose.CryptoKey | undefined> {
  const selected = selects(state, header, token);
  if (!selected) return undefined;
  try {
    return await selected;
  } catch (error) {
    if (error instanceof jose.errors.JWKSNoMatchingKey) return undefined;
    throw error;
  }
}

/** How many times this process fetched the key set at `uri` (tests; never a metric label). */
export function providerKeyFetches(uri: string): number {
  return sets.get(uri)?.fetches ?? 0;
}

export function resetProviderKeysForTests(): void {
  sets.clear();
}
