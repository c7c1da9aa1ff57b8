import Bowser from 'bowser';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import { addressNetwork, clientAddress } from '../ops/client-address.ts';
import { networkOwner } from '../ops/ip-database.ts';
import { endSessionEverywhere } from '../session/end-sessions.ts';
import { sessionHandle, type Session, type SessionOrigin } from '../session/session.ts';
import { canonicalStoreKey } from '../stores/keys.ts';
import { StoreUnavailableError, type KeyValueStore } from '../stores/store.ts';

/**
 * Stolen-session detection (README, "Stolen-session detection"). A copied cookie is
 * replayed from the thief's machine: another network AND another browser than the one
 * that signed in. Either alone is ordinary — a phone changes networks, a browser updates
 * itself — so each alone is only counted; both at once is an anomaly: a security event,
 * `cloakroom_session_anomalies_total{kind="network_and_browser"}`, and under
 * `SESSION_ANOMALY_POLICY=end` the session ended on every instance.
 *
 * The signals are coarse on purpose (IPv4 /24, IPv6 /48; browser family and major
 * version): they travel sealed in the session and appear in logs, so they must not point
 * at one device, and a finer signal would only add false positives.
 */

/** What a change of origin is counted as (the metric's `kind`). */
export type OriginChange = 'network' | 'browser' | 'network_and_browser';

/** The baseline recorded at sign-in (lib/oidc/callback.ts). */
export function originOf(request: Request, config: Pick<Config, 'trustedProxyHops' | 'geoipDb'>, peer?: string): SessionOrigin {
  return { network: networkOf(request, config, peer), browser: browserOf(request.headers.get('user-agent')) };
}

/**
 * The per-request check, from the shared `authorize` step (proxy and WebSocket) and
 * `/auth/session`. When nothing changed it costs two memoised look-ups and two string
 * compares: no parse, no store round trip. Throws `401 session_expired` (ending the
 * session) only for an anomaly under `end`; a store that cannot be reached never ends a
 * session, and under `log` never fails the request either.
 */
export async function checkSessionOrigin(request: Request, session: Session, config: Config, store: KeyValueStore, peer?: string): Promise<void> {
  const recorded = session.signedInFrom;
  if (!recorded) return; // signed in before this check existed
  const network = networkOf(request, config, peer);
  const browser = browserOf(request.headers.get('user-agent'));
  const networkChanged = network !== recorded.network;
  const browserChanged = browser !== recorded.browser;
  if (!networkChanged && !browserChanged) return;

  if (!(networkChanged && browserChanged)) {
    const kind: OriginChange = networkChanged ? 'network' : 'browser';
    const first = await firstSightingOrUnknown(store, config, session, kind, networkChanged ? network : browser);
    if (first) {
      metrics.sessionAnomalies.inc({ kind });
      log.debug('session_origin_changed', { session: sessionHandle(session), kind });
    }
    return;
  }

  const kind: OriginChange = 'network_and_browser';
  let first: boolean | undefined;
  if (config.anomalyPolicy === 'end') {
    // Under `end` a store outage must neither end the session nor let the suspect
    // through: StoreUnavailableError answers 503 store_unavailable, the session is kept.
    first = await firstSighting(store, config, session, kind, `${network}\n${browser}`);
  } else {
    first = await firstSightingOrUnknown(store, config, session, kind, `${network}\n${browser}`);
  }
  if (first) {
    metrics.sessionAnomalies.inc({ kind });
    log.security('session_anomaly', {
      session: sessionHandle(session),
      policy: config.anomalyPolicy,
      signedInNetwork: recorded.network,
      network,
      signedInBrowser: recorded.browser,
      browser,
    });
  }
  if (config.anomalyPolicy !== 'end') return;
  // Only the first sighting ends it (one count of the end, one revocation); a parallel
  // request of the same holder is refused the same way while that is under way.
  if (first) await endSessionEverywhere(store, config, session, 'anomaly');
  throw new BrokerError('session_expired', { publicMessage: 'this session was ended: it was used from another network and browser', endsSession: true });
}

/**
 * True the first time this session shows this new value on any instance: one SET NX in
 * the shared store under an HMAC key (never the address itself), kept as long as the
 * session can live. A process-local memo spares the store every later request of a
 * session that moved (a phone on another network keeps sending from it).
 */
async function firstSighting(store: KeyValueStore, config: Config, session: Session, kind: OriginChange, value: string): Promise<boolean> {
  const sighting = `${session.id}\n${kind}\n${value}`;
  // Checked before the HMAC: a moved session's every later request costs a Map look-up.
  if (seenHere.has(sighting)) return false;
  const ttl = Math.max(1, Math.ceil((session.createdAt + config.session.absoluteTimeout * 1000 - Date.now()) / 1000));
  const first = await store.setIfAbsent(canonicalStoreKey(config, 'anomaly', sighting), '1', ttl);
  remember(seenHere, sighting, true);
  return first;
}

/** `firstSighting`, where a store outage means "not counted" rather than a failed request. */
async function firstSightingOrUnknown(store: KeyValueStore, config: Config, session: Session, kind: OriginChange, value: string): Promise<boolean> {
  try {
    return await firstSighting(store, config, session, kind, value);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError || (error instanceof BrokerError && error.code === 'store_unavailable'))) throw error;
    // Not counted now: counting without the shared mark could count it on every request.
    log.debug('session_origin_not_recorded', { kind });
    return false;
  }
}

/* ------------------------------------------------------------------------------------ */

/**
 * Bounded memos: a User-Agent is parsed (about 14 µs) once per distinct value, not once per
 * request, and a flood of made-up headers evicts the least recently used instead of growing.
 */
const MEMO_LIMIT = 10_000;
const browsers = new LRUCache<string, string>({ max: MEMO_LIMIT });
const networks = new LRUCache<string, string>({ max: MEMO_LIMIT });
const seenHere = new LRUCache<string, true>({ max: MEMO_LIMIT });

function remember<T extends string | true>(memo: LRUCache<string, T>, key: string, value: T): T {
  memo.set(key, value);
  return value;
}

/**
 * The /24 or /48; with SESSION_GEOIP_DB, the autonomous system and country where the
 * database knows the address ("AS64500 NL"): a phone hopping between its carrier's ranges,
 * or a household's DHCP lease changing, stays on one network.
 */
function networkOf(request: Request, config: Pick<Config, 'trustedProxyHops' | 'geoipDb'>, peer?: string): string {
  const chain = `${request.headers.get('x-forwarded-for') ?? ''}\n${peer ?? ''}\n${config.trustedProxyHops}\n${config.geoipDb ?? ''}`;
  const memoised = networks.get(chain);
  if (memoised !== undefined) return memoised;
  const address = clientAddress(request, config, peer);
  const owner = config.geoipDb ? networkOwner(config.geoipDb, address) : undefined;
  return remember(networks, chain, owner ?? addressNetwork(address));
}

/**
 * "Chrome 156", "Firefox 128", "Safari 17"; "other" when the User-Agent names no known
 * browser (a script). Family and major version only: minor versions change weekly.
 */
export function browserOf(userAgent: string | null): string {
  const ua = (userAgent ?? '').slice(0, 512);
  const memoised = browsers.get(ua);
  if (memoised !== undefined) return memoised;
  let described = 'other';
  if (ua) {
    const { name, version } = Bowser.getParser(ua).getBrowser();
    if (name) {
      const major = /^\d{1,5}/.exec(version ?? '')?.[0];
      described = (major ? `${name} ${major}` : name).slice(0, 48);
    }
  }
  return remember(browsers, ua, described);
}
