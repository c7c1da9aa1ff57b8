import { createClient, createCluster, defineScript, type CommandParser, type RedisArgument } from 'redis';
import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import { StoreUnavailableError, type KeyValueStore } from './store.ts';

/**
 * The shared store on Redis (or Valkey), with the official client `redis` (node-redis 6):
 * one server (`REDIS_URL`, `redis://` or `rediss://` for TLS, credentials in the URL) or a
 * Redis Cluster (`REDIS_CLUSTER_NODES`). Every key lives under `REDIS_KEY_PREFIX`, applied
 * by the client itself (its `keyPrefix` prefixes every key a command or script declares).
 *
 * Failing fast and closed is the point of this file:
 *  - nothing queues while disconnected (`disableOfflineQueue`): a command sent during a
 *    reconnect is refused at once instead of waiting for a server that may never return;
 *  - every operation has a deadline of its own (`OPERATION_DEADLINE_MS`). node-redis's
 *    command `timeout` only covers the time before a command is written to the socket; a
 *    server that accepted the connection and then stalled (SIGSTOP, a blocking script, a
 *    network black hole) would otherwise hold the request for as long as the socket lives;
 *  - any failure rejects with `StoreUnavailableError` and counts in
 *    `cloakroom_store_errors_total`: callers answer `503 store_unavailable` and never read
 *    an unreachable store as "nobody logged out".
 * A command that missed its deadline may still run once the server resumes: every write
 * here is idempotent or fenced (owner tokens, compare-and-set), so a late one is harmless.
 */

/** Long enough for a loaded Redis across a zone (single-digit ms is normal), short enough that a stall never holds a request. */
const OPERATION_DEADLINE_MS = 300;
/** A connection attempt that neither succeeds nor fails within this is abandoned and retried. */
const CONNECT_TIMEOUT_MS = 1_000;
/** Reconnect backoff: 50 ms doubling, capped so that service is back within about half a second of Redis returning. */
const RECONNECT_MAX_DELAY_MS = 500;
/** A connection that has answered nothing for this long while commands missed their deadline is replaced. */
const STALLED_CONNECTION_MS = 1_000;
/** Commands waiting for replies of a stalled server are bounded: beyond this, refuse at once. */
const MAX_PENDING_COMMANDS = 10_000;
/**
 * The revocation reads' client-side cache (RESP3 tracking: Redis pushes an invalidation
 * when another client writes a key this connection has read). Invalidation is what makes
 * another instance's logout visible at once; the TTL bounds what an instance that missed
 * invalidations can answer from memory (a suspended serverless instance receives no
 * pushes while frozen, and may answer from its cache before it reads the backlog): at
 * most a second, the contract's "seen by all within a second". A hot session still costs
 * one round trip per second instead of one per API call.
 */
const REVOCATION_CACHE_TTL_MS = 1_000;
/** Bounded memory: about 150 bytes per entry, so ~3 MB at most. LRU: hot sessions stay. */
const REVOCATION_CACHE_MAX_ENTRIES = 20_000;

const ttlMs = (ttlSeconds: number) => Math.max(1, Math.ceil(ttlSeconds * 1000));

/*
 * The conditional writes, each a single Lua script: Redis runs a script atomically, so no
 * other client's command can fall between the comparison and the write (a GET then SET
 * from here could overwrite a lock another instance took in between).
 */
const compareAndSet = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0`,
  parseCommand(parser: CommandParser, key: RedisArgument, expected: RedisArgument, value: RedisArgument, ms: RedisArgument) {
    parser.pushKey(key);
    parser.push(expected, value, ms);
  },
  transformReply: undefined as unknown as () => number,
});
const extendIfEquals = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
  parseCommand(parser: CommandParser, key: RedisArgument, expected: RedisArgument, ms: RedisArgument) {
    parser.pushKey(key);
    parser.push(expected, ms);
  },
  transformReply: undefined as unknown as () => number,
});
const deleteIfEquals = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
  parseCommand(parser: CommandParser, key: RedisArgument, expected: RedisArgument) {
    parser.pushKey(key);
    parser.push(expected);
  },
  transformReply: undefined as unknown as () => number,
});
const scripts = { compareAndSetScript: compareAndSet, extendIfEqualsScript: extendIfEquals, deleteIfEqualsScript: deleteIfEquals };

/** What this store needs from a node-redis client or cluster: the same calls on both. */
interface Commands {
  get(key: string): Promise<string | null>;
  mGet(keys: string[]): Promise<Array<string | null>>;
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number }; condition?: 'NX' }): Promise<string | null>;
  del(key: string): Promise<number>;
  compareAndSetScript(key: string, expected: string, value: string, ms: string): Promise<number>;
  extendIfEqualsScript(key: string, expected: string, ms: string): Promise<number>;
  deleteIfEqualsScript(key: string, expected: string): Promise<number>;
  connect(): Promise<unknown>;
  readonly isOpen: boolean;
  close(): Promise<void>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
}

export interface RedisStoreOptions {
  /** `redis://` / `rediss://` URL of one server. */
  url?: string;
  /** `host:port` seed nodes of a Redis Cluster, instead of `url`. */
  clusterNodes?: readonly string[];
  keyPrefix: string;
  /** The revocation cache's TTL; default one second. Tests lengthen it to prove that invalidation, not expiry, does the work. */
  revocationCacheTtlMs?: number;
}

function reconnectDelay(retries: number): number {
  // Jitter, so that many instances do not knock on a recovering server in lockstep.
  return Math.min(50 * 2 ** retries, RECONNECT_MAX_DELAY_MS) * (0.75 + Math.random() / 4);
}

const revocationCache = (ttlMs = REVOCATION_CACHE_TTL_MS) => ({ ttl: ttlMs, maxEntries: REVOCATION_CACHE_MAX_ENTRIES, evictPolicy: 'LRU' as const, recordStats: false });

/**
 * `cached`: a connection with client-side caching, used by `getManyCached` only. node-redis
 * caches every cacheable read of a caching connection; the locks, refresh records and
 * compare-and-set reads must always see the server's current value, so they keep a
 * connection of their own without a cache.
 */
function createCommands(options: RedisStoreOptions, cached = false): { commands: Commands; cluster: boolean } {
  const socket = { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: reconnectDelay };
  const perConnection = {
    disableOfflineQueue: true,
    commandsQueueMaxLength: MAX_PENDING_COMMANDS,
    // RESP3 is node-redis 6's default and what tracking's invalidation pushes need.
    ...(cached ? { RESP: 3 as const } : {}),
  };
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    // The seeds serve topology discovery only; every connection to a discovered node is
    // made from `defaults`, so the fail-fast settings go there. Seeds are plain host:port:
    // no password or TLS for a cluster yet (README, "Many instances").
    const commands = createCluster({
      rootNodes: options.clusterNodes.map((node) => ({ url: `redis://${node}` })),
      defaults: { ...perConnection, socket },
      keyPrefix: options.keyPrefix,
      scripts,
      // One cache shared by the cluster's node connections; a node's dropped connection
      // flushes it (node-redis's BasicPooledClientSideCache), so a cluster fails closed too.
      ...(cached ? { clientSideCache: revocationCache(options.revocationCacheTtlMs) } : {}),
    }) as unknown as Commands;
    return { commands, cluster: true };
  }
  const commands = createClient({
    url: options.url,
    ...perConnection,
    socket,
    keyPrefix: options.keyPrefix,
    scripts,
    ...(cached ? { clientSideCache: revocationCache(options.revocationCacheTtlMs) } : {}),
  }) as unknown as Commands;
  return { commands, cluster: false };
}

export class RedisStore implements KeyValueStore {
  private readonly options: RedisStoreOptions;
  private commands!: Commands;
  /** The caching connection for the revocation reads (`getManyCached`). */
  private cachedCommands!: Commands;
  private cluster = false;
  private connecting: Promise<void> | undefined;
  private connected = false;
  private closed = false;
  /** Logged once per outage, not once per reconnect attempt. */
  private reportedDown = false;
  /** When the server last answered anything, and when a stalled connection was last replaced. */
  private lastAnswerAt = Date.now();
  private lastReplacedAt = 0;

  constructor(options: RedisStoreOptions) {
    this.options = options;
    this.createConnection();
  }

  private createConnection(): void {
    const created = createCommands(this.options);
    this.commands = created.commands;
    this.cachedCommands = createCommands(this.options, true).commands;
    this.cluster = created.cluster;
    this.connected = false;
    this.connecting = undefined;
    const commands = this.commands;
    // node-redis emits `error` on every failed reconnect; without a listener Node would
    // crash the process. The message may name the host, never the password.
    commands.on('error', (error) => {
      if (this.reportedDown || commands !== this.commands) return;
      this.reportedDown = true;
      log.warn('store_disconnected', { errorName: error.name });
    });
    commands.on('ready', () => {
      if (commands !== this.commands) return;
      if (this.reportedDown) log.info('store_reconnected', {});
      this.reportedDown = false;
    });
    // The caching connection reconnects on its own (its cache flushed by node-redis on the
    // drop); its errors are the same outage the main connection reports.
    this.cachedCommands.on('error', () => undefined);
  }

  /**
   * Connects once, in the background of the first operations. A cluster's first topology
   * discovery is not retried by node-redis (a single server's connect is): retry it here,
   * so that an instance started while Redis was down recovers on its own.
   */
  private ensureConnected(): void {
    if (this.connected || this.connecting || this.closed) return;
    const commands = this.commands;
    // Each connection opened only if it is not yet: after one of the two failed, a retry
    // must not call connect() again on the one that succeeded (node-redis refuses that).
    const open = (client: Commands) => (client.isOpen ? Promise.resolve() : client.connect());
    this.connecting = Promise.all([open(commands), open(this.cachedCommands)]).then(
      () => {
        if (commands !== this.commands) return;
        this.connected = true;
        this.connecting = undefined;
        this.lastAnswerAt = Date.now();
      },
      (error: unknown) => {
        if (commands !== this.commands) return;
        if (!this.reportedDown) {
          this.reportedDown = true;
          log.warn('store_connect_failed', { errorName: error instanceof Error ? error.name : 'unknown' });
        }
        setTimeout(() => {
          if (commands !== this.commands) return;
          this.connecting = undefined;
          this.ensureConnected();
        }, RECONNECT_MAX_DELAY_MS).unref();
      },
    );
  }

  /**
   * A connection that is open but has answered nothing for a while is abandoned for a new
   * one. A network partition or a failover to another host leaves the old socket silent
   * without closing it (TCP notices only after many minutes), and node-redis would keep
   * writing into it; a fresh connection reaches whichever server answers now. A server
   * that is merely slow keeps its connection: it answers something within the window.
   */
  private replaceIfStalled(): void {
    const now = Date.now();
    if (!this.connected || this.closed) return;
    if (now - this.lastAnswerAt < STALLED_CONNECTION_MS || now - this.lastReplacedAt < STALLED_CONNECTION_MS) return;
    this.lastReplacedAt = now;
    log.warn('store_connection_replaced', { silentMs: now - this.lastAnswerAt });
    const stalled = [this.commands, this.cachedCommands];
    this.createConnection();
    this.ensureConnected();
    // Rejects whatever still waits on the silent sockets; nothing listens any more. The
    // cache goes with its connection: nothing is answered from what a silent one cached.
    for (const old of stalled) {
      Promise.resolve()
        .then(() => old.destroy())
        .catch(() => undefined);
    }
  }

  /** Runs one operation under the deadline; every failure becomes a `StoreUnavailableError`. */
  private async run<T>(operation: (commands: Commands) => Promise<T>, cached = false): Promise<T> {
    this.ensureConnected();
    let timer: NodeJS.Timeout | undefined;
    let missedDeadline = false;
    // While a connection is being set up (a cold serverless instance: TCP, TLS, HELLO,
    // AUTH), the operation may wait as long as a connection attempt may take, still
    // about a second; once connected, the short deadline applies.
    const budgetMs = this.connected ? OPERATION_DEADLINE_MS : CONNECT_TIMEOUT_MS;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          missedDeadline = true;
          reject(new Error(`no answer within ${budgetMs} ms`));
        }, budgetMs);
      });
      // Before the first connection completes, node-redis refuses commands (the client
      // is not open yet): wait for it, still under the same deadline.
      const commands = cached ? this.cachedCommands : this.commands;
      const pending = this.connected ? operation(commands) : (this.connecting ?? Promise.resolve()).then(() => operation(commands));
      const result = await Promise.race([pending, deadline]);
      // A cache hit proves nothing about the server: only real answers count against a stall.
      if (!cached) this.lastAnswerAt = Date.now();
      return result;
    } catch (error) {
      metrics.storeErrors.inc();
      if (missedDeadline) this.replaceIfStalled();
      throw new StoreUnavailableError({ cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.run((c) => c.get(key))) ?? undefined;
  }

  /**
   * One MGET on a single server. In a cluster an MGET must stay within one hash slot
   * (CROSSSLOT otherwise), and these keys are HMACs spread over every slot: grouping them
   * under a hash tag would put every session's revocation keys on one node. Parallel
   * GETs instead: one round trip per node in practice, since node-redis pipelines the
   * commands it sends to the same node.
   */
  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    if (keys.length === 0) return [];
    const values = await this.run((c) => (this.cluster ? Promise.all(keys.map((key) => c.get(key))) : c.mGet([...keys])));
    return values.map((value) => value ?? undefined);
  }

  /**
   * `getMany` through the caching connection: the revocation check on every API call.
   * A hit costs no round trip; another client's write to any of the keys invalidates
   * the entry (Redis's push), and a dropped connection flushes the whole cache (fail
   * closed: the next read goes to Redis, and rejects if Redis is gone). Plain GETs here
   * rather than MGET: each key is cached on its own, so the global `revoked-before` key
   * and a user's keys, shared by many sessions, are read once for all of them.
   */
  async getManyCached(keys: readonly string[]): Promise<Array<string | undefined>> {
    if (keys.length === 0) return [];
    const values = await this.run((c) => Promise.all(keys.map((key) => c.get(key))), true);
    return values.map((value) => value ?? undefined);
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.run((c) => c.set(key, value, { expiration: { type: 'PX', value: ttlMs(ttlSeconds) } }));
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    // SET NX PX: atomic on the server, the classic single-instance lock.
    const reply = await this.run((c) => c.set(key, value, { expiration: { type: 'PX', value: ttlMs(ttlSeconds) }, condition: 'NX' }));
    return reply === 'OK';
  }

  async compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds: number): Promise<boolean> {
    if (expected === undefined) return this.setIfAbsent(key, value, ttlSeconds);
    return (await this.run((c) => c.compareAndSetScript(key, expected, value, String(ttlMs(ttlSeconds))))) === 1;
  }

  async extendIfEquals(key: string, expected: string, ttlSeconds: number): Promise<boolean> {
    return (await this.run((c) => c.extendIfEqualsScript(key, expected, String(ttlMs(ttlSeconds))))) === 1;
  }

  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    return (await this.run((c) => c.deleteIfEqualsScript(key, expected))) === 1;
  }

  async delete(key: string): Promise<void> {
    await this.run((c) => c.del(key));
  }

  async close(): Promise<void> {
    this.closed = true;
    const commands = this.commands;
    const cachedCommands = this.cachedCommands;
    const wasOpen = this.connected || this.connecting !== undefined;
    this.connected = false;
    this.connecting = undefined;
    if (!wasOpen) return;
    // close() waits for pending replies, which a stalled server never sends: bounded, then destroyed.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([commands.close(), cachedCommands.close()]),
      new Promise((resolve) => (timer = setTimeout(resolve, OPERATION_DEADLINE_MS))),
    ]).catch(() => undefined);
    clearTimeout(timer);
    for (const client of [commands, cachedCommands]) {
      try {
        client.destroy();
      } catch {
        // already closed
      }
    }
  }
}
