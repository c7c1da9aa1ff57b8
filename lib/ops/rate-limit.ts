import { RateLimiterMemory, RateLimiterRedis, RLWrapperTimeouts, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { canonicalStoreKey } from '../stores/keys.ts';
import { addressBucket, addressNetwork, clientAddress } from './client-address.ts';
import { metrics } from './metrics.ts';
import { rateLimitBackendFor } from './rate-limit-redis.ts';

/**
 * Rate limits (CONTRACT.md: RATE_LIMIT_API, RATE_LIMIT_AUTH; `429 rate_limited` with
 * `Retry-After`). Two budgets, each a number of requests per minute:
 * - `api`: per session on `/api/`. A request without a (valid) session counts against
 *   its client address instead: keying by the sealed cookie's bytes would let a client
 *   rotate junk cookies to get a fresh budget each time.
 * - `auth`: per client address on `/auth/login` and `/auth/callback`. Each sign-in start
 *   costs the provider a PAR call; a loop of them would trip the provider's per-client
 *   limits and lock every user out of signing in (AUDIT.md M10).
 * `0` turns a budget off.
 *
 * Keys are keyed hashes (`canonicalStoreKey`, one key on every instance), so a shared
 * store never holds a session id or a user's address in the clear.
 */
export type RateLimitScope = 'api' | 'auth';

/**
 * The seam for a shared store: a connected node-redis (v4+) client, or none for this
 * process's memory. With a client, counters live in Redis (every instance shares one
 * budget) and an in-memory limiter answers while Redis is unreachable, so an outage
 * degrades to per-instance limits instead of failing requests or letting all through.
 */
export interface RateLimitBackend {
  redis?: unknown;
  /** Prefix of the Redis keys (REDIS_KEY_PREFIX); the scope and `rate:` follow. */
  keyPrefix?: string;
  /**
   * Default: 150. Milliseconds to wait for Redis before the in-memory limiter answers.
   * node-redis's own command timeout stops once a command is written to the socket, so a
   * stalled server (not a closed one) would otherwise hold every request.
   */
  timeoutMs?: number;
  /** Settles when the first connection is up, or when waiting longer is pointless; never rejects. */
  ready?: Promise<void>;
}

type Limiters = Partial<Record<RateLimitScope, RateLimiterAbstract>>;

const WINDOW_SECONDS = 60;
const REGISTRY_KEY = Symbol.for('cloakroom.rate-limits');
/** `backend` undefined: not chosen yet; the first limited request picks it from the configuration (REDIS_*). */
type Anchored = typeof globalThis & { [REGISTRY_KEY]?: { backend?: RateLimitBackend; byConfig: WeakMap<Config, Limiters> } };

/**
 * Anchored on `globalThis`: the login, callback and proxy routes are separate Next.js
 * bundles, and a budget per module copy would multiply the limit by the number of copies.
 */
function registry() {
  const anchored = globalThis as Anchored;
  anchored[REGISTRY_KEY] ??= { byConfig: new WeakMap() };
  return anchored[REGISTRY_KEY];
}

/**
 * Chooses where the counters live, instead of the configuration's REDIS_* (tests; `{}`:
 * this process's memory). Limiters built before are dropped.
 */
export function setRateLimitBackend(backend: RateLimitBackend): void {
  const r = registry();
  r.backend = backend;
  r.byConfig = new WeakMap();
}

function createLimiter(scope: RateLimitScope, points: number, backend: RateLimitBackend): RateLimiterAbstract {
  const options = { points, duration: WINDOW_SECONDS, keyPrefix: scope };
  if (!backend.redis) return new RateLimiterMemory(options);
  const shared = new RateLimiterRedis({
    ...options,
    keyPrefix: `${backend.keyPrefix ?? ''}${scope}`,
    storeClient: backend.redis,
    useRedisPackage: true,
    // Fail over at once instead of queueing behind a dead connection.
    rejectIfRedisNotReady: true,
  });
  return new RLWrapperTimeouts({
    limiter: shared,
    timeoutMs: backend.timeoutMs ?? 150,
    insuranceLimiter: new RateLimiterMemory(options),
  });
}

function limiterFor(config: Config, scope: RateLimitScope): RateLimiterAbstract | undefined {
  const points = config.rateLimits[scope];
  if (points <= 0) return undefined;
  const r = registry();
  let limiters = r.byConfig.get(config);
  if (!limiters) {
    limiters = {};
    r.byConfig.set(config, limiters);
  }
  // With REDIS_URL / REDIS_CLUSTER_NODES set, every instance counts in Redis (one budget
  // across instances); a test may have chosen a backend already (`setRateLimitBackend`).
  r.backend ??= rateLimitBackendFor(config.redis);
  return (limiters[scope] ??= createLimiter(scope, points, r.backend));
}

/**
 * The key a session counts under, computed once per session id: the HMAC is cheap, but
 * this runs on every API call. Bounded, because session ids are as many as sessions.
 */
const sessionKeysByConfig = new WeakMap<Config, Map<string, string>>();
const SESSION_KEY_CACHE = 10_000;

function sessionKey(config: Config, sessionId: string): string {
  let sessionKeys = sessionKeysByConfig.get(config);
  if (!sessionKeys) {
    sessionKeys = new Map();
    sessionKeysByConfig.set(config, sessionKeys);
  }
  let key = sessionKeys.get(sessionId);
  if (key === undefined) {
    key = canonicalStoreKey(config, 'rate', `session\n${sessionId}`);
    if (sessionKeys.size >= SESSION_KEY_CACHE) sessionKeys.delete(sessionKeys.keys().next().value!);
    sessionKeys.set(sessionId, key);
  }
  return key;
}

function addressKey(config: Config, request: Request, peer: string | undefined): string {
  return canonicalStoreKey(config, 'rate', `address\n${addressBucket(clientAddress(request, config, peer))}`);
}

/**
 * A refusal is a `RateLimiterRes`, but not necessarily of this module copy's class (Next.js
 * bundles the library into each route, and the limiters are shared), so it is recognised
 * by shape rather than `instanceof`.
 */
function isVerdict(outcome: unknown): outcome is RateLimiterRes {
  return typeof outcome === 'object' && outcome !== null && !(outcome instanceof Error)
    && typeof (outcome as RateLimiterRes).msBeforeNext === 'number';
}

/**
 * Where a refused caller is, for the log: the /24 or /48 of its address (what the session
 * list shows), never the address itself — a log line must not point at one device. A
 * session-keyed refusal needs none (the session is the key; its id is not logged either).
 */
function refusedNetwork(request: Request, config: Config, peer: string | undefined): () => string {
  return () => addressNetwork(clientAddress(request, config, peer));
}

async function consume(limiter: RateLimiterAbstract, key: string, scope: RateLimitScope, network?: () => string): Promise<void> {
  const ready = registry().backend?.ready;
  if (ready) await ready;
  try {
    await limiter.consume(key);
  } catch (outcome) {
    // Anything but a verdict is the store failing beyond its insurance: a rate limit is
    // protection, not a reason to refuse a user, so the request goes on.
    if (!isVerdict(outcome)) return;
    metrics.rateLimited.inc({ scope });
    const retryAfter = Math.max(1, Math.ceil(outcome.msBeforeNext / 1000));
    log.warn('rate_limited', { scope, keyKind: network ? 'address' : 'session', network: network?.(), retryAfter });
    throw new BrokerError('rate_limited', { headers: [['retry-after', String(retryAfter)]] });
  }
}

/**
 * `/api/...`: one request of the session's budget, or of the client address's when the
 * request carries no valid session. Throws `BrokerError('rate_limited')` over budget.
 * Call it after the session is read and before any refresh or upstream call.
 */
export async function limitApiCall(request: Request, config: Config, sessionId: string | undefined, peer?: string): Promise<void> {
  const limiter = limiterFor(config, 'api');
  if (!limiter) return;
  const key = sessionId ? sessionKey(config, sessionId) : addressKey(config, request, peer);
  await consume(limiter, key, 'api', sessionId ? undefined : refusedNetwork(request, config, peer));
}

/**
 * `/auth/login` and `/auth/callback`: one request of the client address's budget (both
 * endpoints share it). Call it first, before the provider is asked anything.
 */
export async function limitSignIn(request: Request, config: Config, peer?: string): Promise<void> {
  const limiter = limiterFor(config, 'auth');
  if (!limiter) return;
  await consume(limiter, addressKey(config, request, peer), 'auth', refusedNetwork(request, config, peer));
}
