import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import type { KeyValueStore } from './store.ts';

export interface MemoryStoreOptions {
  /**
   * The most entries held at once; beyond it the least recently used entry is evicted.
   * A last-resort bound (AUDIT H2): with one refresh record per session and TTLs that
   * follow the session's remaining lifetime, live entries track live sessions, and the
   * cap only bites when something is wrong. Default 100,000: about 230 MB of heap at
   * the measured 2.3 KB per refresh record of a session with one API. An evicted
   * record or revocation mark is forgotten, so the cap must sit above the live count.
   */
  maxEntries?: number;
  /** How often the incremental sweep runs. Default 1,000 ms. */
  sweepIntervalMs?: number;
  /**
   * How many entries one sweep tick inspects. Default 1,000: a tick costs tens of
   * microseconds, never a walk of the whole map on the event loop (7 ms per 200k entries).
   */
  sweepBatch?: number;
}

interface Entry {
  value: string;
  expiresAt: number;
}

/**
 * The default store: one process's memory. Enough for a single instance; several
 * instances need a shared store so that a logout on one is seen by all.
 * Bounded three ways: entries expire lazily on read, an incremental sweep drops expired
 * entries a batch at a time, and a hard cap evicts the least recently used entry.
 * The Map's insertion order is the recency order: a read or write moves the entry to
 * the end, eviction takes the first.
 */
export class MemoryStore implements KeyValueStore {
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly maxEntries: number;
  private readonly sweepBatch: number;
  /** Where the incremental sweep resumes; a Map iterator survives inserts and deletes. */
  private cursor: MapIterator<[string, Entry]> | undefined;
  private evicted = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.maxEntries = Math.max(1, options.maxEntries ?? 100_000);
    this.sweepBatch = Math.max(1, options.sweepBatch ?? 1_000);
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 1_000);
    this.sweeper.unref();
  }

  private read(key: string, now: number): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.remove(key);
      return undefined;
    }
    // Most recently used goes last.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  private write(key: string, value: string, ttlSeconds: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
      if (this.evicted++ % 10_000 === 0) log.warn('store_evicting', { maxEntries: this.maxEntries, evicted: this.evicted });
    }
    metrics.storeEntries.set(this.entries.size);
  }

  private remove(key: string): void {
    if (this.entries.delete(key)) metrics.storeEntries.set(this.entries.size);
  }

  async get(key: string): Promise<string | undefined> {
    return this.read(key, Date.now());
  }

  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    const now = Date.now();
    return keys.map((key) => this.read(key, now));
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.write(key, value, ttlSeconds);
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    if (this.read(key, Date.now()) !== undefined) return false;
    this.write(key, value, ttlSeconds);
    return true;
  }

  async compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds: number): Promise<boolean> {
    if (this.read(key, Date.now()) !== expected) return false;
    this.write(key, value, ttlSeconds);
    return true;
  }

  async extendIfEquals(key: string, expected: string, ttlSeconds: number): Promise<boolean> {
    if (this.read(key, Date.now()) !== expected) return false;
    const entry = this.entries.get(key) as Entry;
    entry.expiresAt = Date.now() + ttlSeconds * 1000;
    return true;
  }

  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    if (this.read(key, Date.now()) !== expected) return false;
    this.remove(key);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.remove(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** One batch of the incremental sweep (the timer calls it; tests may too). */
  sweep(): void {
    const now = Date.now();
    this.cursor ??= this.entries.entries();
    for (let i = 0; i < this.sweepBatch; i++) {
      const next = this.cursor.next();
      if (next.done) {
        this.cursor = undefined;
        break;
      }
      const [key, entry] = next.value;
      if (entry.expiresAt <= now) this.entries.delete(key);
    }
    metrics.storeEntries.set(this.entries.size);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
