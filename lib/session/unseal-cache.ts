import { LRUCache } from 'lru-cache';

/**
 * The unseal cache: a sealed cookie seen recently maps to its opened session, so that a
 * page's burst of API calls pays for one decrypt (0.3–0.7 ms each, most of the broker's
 * own cost on the proxy path). Its keys are hashes of whatever cookie a client sends, so
 * it is built so that a client cannot use it against other users (AUDIT.md L7):
 *  - only successes enter the main cache, least recently used evicted first, bounded by
 *    entries and by bytes (a session with many tokens costs what it weighs);
 *  - failures (junk, tampered, foreign cookies) go to a small cache of their own, so a
 *    loop of distinct junk cookies evicts only other junk, never a real session's entry;
 *  - a decrypt in progress is shared by the requests that need it (no stampede) from a
 *    map of its own, so concurrent junk cannot evict entries while it is being opened.
 * Revocation and lifetimes are still checked on every request: an entry only saves the
 * decrypt, never a check.
 */
export type Opened<T> = T | { failure: string };

export interface UnsealCacheLimits {
  /** Most sessions kept. */
  maxEntries: number;
  /** Most bytes kept (the sealed size of each entry stands for its weight). */
  maxBytes: number;
  /** Most unreadable cookies remembered. */
  maxFailures: number;
  /** How long an unused entry lives, milliseconds; a hit extends it. */
  ttlMs: number;
}

export const DEFAULT_UNSEAL_CACHE_LIMITS: UnsealCacheLimits = {
  maxEntries: 10_000,
  maxBytes: 32 * 1024 * 1024,
  maxFailures: 1_000,
  ttlMs: 30_000,
};

export class UnsealCache<T extends object> {
  readonly #hits: LRUCache<string, T>;
  readonly #failures: LRUCache<string, string>;
  readonly #opening = new Map<string, Promise<Opened<T>>>();
  /** Decrypts done and decrypts spared; shared with a caller's counters when given. */
  readonly stats: { unseals: number; cacheHits: number };

  constructor(limits: UnsealCacheLimits = DEFAULT_UNSEAL_CACHE_LIMITS, stats = { unseals: 0, cacheHits: 0 }) {
    this.stats = stats;
    this.#hits = new LRUCache<string, T>({ max: limits.maxEntries, maxSize: limits.maxBytes, ttl: limits.ttlMs, updateAgeOnGet: true });
    this.#failures = new LRUCache<string, string>({ max: limits.maxFailures, ttl: limits.ttlMs });
  }

  /**
   * The opened value for `key` (a hash of the sealed cookie of `bytes` characters):
   * from the cache, from a decrypt already running, or from `open()`.
   */
  get(key: string, bytes: number, open: () => Promise<Opened<T>>): Promise<Opened<T>> {
    const hit = this.#hits.get(key);
    if (hit) {
      this.stats.cacheHits++;
      return Promise.resolve(hit);
    }
    const failure = this.#failures.get(key);
    if (failure) {
      this.stats.cacheHits++;
      return Promise.resolve({ failure });
    }
    const running = this.#opening.get(key);
    if (running) return running;
    this.stats.unseals++;
    const opening = open()
      .then((opened) => {
        if ('failure' in opened && typeof opened.failure === 'string') this.#failures.set(key, opened.failure);
        else this.#hits.set(key, opened as T, { size: Math.max(1, bytes) });
        return opened;
      })
      .finally(() => this.#opening.delete(key));
    this.#opening.set(key, opening);
    return opening;
  }

  /** The broker knows what it just sealed: the browser's next request needs no decrypt. */
  remember(key: string, bytes: number, value: T): void {
    this.#hits.set(key, value, { size: Math.max(1, bytes) });
  }

  has(key: string): boolean {
    return this.#hits.has(key);
  }

  clear(): void {
    this.#hits.clear();
    this.#failures.clear();
  }

  get size(): { entries: number; bytes: number; failures: number } {
    return { entries: this.#hits.size, bytes: this.#hits.calculatedSize, failures: this.#failures.size };
  }
}
