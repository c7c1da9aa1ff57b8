import type { Config } from '../config/load.ts';
import { watchSession } from '../session/lifetime-watch.ts';
import type { Session } from '../session/session.ts';
import type { KeyValueStore } from '../stores/store.ts';

/**
 * An answer that is still flowing when its session ends is ended with it (CONTRACT.md,
 * "Streams end with their session"): a server-sent-events stream or a long download must
 * not keep delivering a signed-out user's data. `signal` is handed to `forward` as its
 * `endSignal`: aborting it ends the body cleanly, abandons the upstream request (its
 * connection is freed) and so settles the exchange (its concurrency slot is released).
 *
 * Ordinary short answers cost one timer: a body is watched only once it has been flowing
 * for LAZY_WATCH_MS; a streaming answer (a streaming route, an EventSource) at once.
 */
const LAZY_WATCH_MS = 1_000;

export class StreamLifetime {
  readonly #session: Session | undefined;
  readonly #config: Config;
  readonly #store: KeyValueStore;
  readonly #streaming: boolean;
  readonly #ending = new AbortController();
  #done = false;
  #lazy: NodeJS.Timeout | undefined;
  #stopWatching: (() => void) | undefined;

  constructor(session: Session | undefined, config: Config, store: KeyValueStore, streaming: boolean) {
    this.#session = session;
    this.#config = config;
    this.#store = store;
    this.#streaming = streaming;
  }

  get signal(): AbortSignal {
    return this.#ending.signal;
  }

  /** The API answered with a body: it is watched from now (streaming) or once it has flowed a while. */
  answered(): void {
    if (this.#done || !this.#session) return;
    if (this.#streaming) this.#watch();
    else {
      this.#lazy = setTimeout(() => this.#watch(), LAZY_WATCH_MS);
      this.#lazy.unref();
    }
  }

  /** The exchange is over (body ended, failed or cancelled): nothing is left to watch. */
  settled(): void {
    this.#done = true;
    clearTimeout(this.#lazy);
    this.#stopWatching?.();
  }

  #watch(): void {
    if (this.#done || !this.#session) return;
    this.#stopWatching = watchSession(this.#session, this.#config, this.#store, () => this.#ending.abort());
  }
}
