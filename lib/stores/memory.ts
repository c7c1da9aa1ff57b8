import type { KeyValueStore } from './store.ts';

/**
 * The default store: one process's memory. Enough for a single instance; several
 * instances need a shared store so that a logout on one is seen by all.
 * Entries expire lazily on read and in a periodic sweep, so memory stays bounded by
 * what is live.
 */
export class MemoryStore implements KeyValueStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepIntervalMs = 60_000) {
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  private read(key: string, now: number): string | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async get(key: string): Promise<string | undefined> {
    return this.read(key, Date.now());
  }

  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    const now = Date.now();
    return keys.map((key) => this.read(key, now));
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.entries.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 });
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    if (this.read(key, Date.now()) !== undefined) return false;
    this.entries.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 });
    return true;
  }

  async compareAndSet(key: string, expected: string | undefined, value: string, ttlSeconds: number): Promise<boolean> {
    if (this.read(key, Date.now()) !== expected) return false;
    this.entries.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 });
    return true;
  }

  async extendIfEquals(key: string, expected: string, ttlSeconds: number): Promise<boolean> {
    const entry = this.entries.get(key);
    if (this.read(key, Date.now()) !== expected || !entry) return false;
    entry.expiresAt = Date.now() + ttlSeconds * 1000;
    return true;
  }

  async deleteIfEquals(key: string, expected: string): Promise<boolean> {
    if (this.read(key, Date.now()) !== expected) return false;
    this.entries.delete(key);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
