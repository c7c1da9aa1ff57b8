import { MemoryStore } from './memory.ts';
import type { KeyValueStore } from './store.ts';

export type { KeyValueStore } from './store.ts';

let store: KeyValueStore | undefined;

/** The process's store. Memory for now; a shared store plugs in here. */
export function getStore(): KeyValueStore {
  store ??= new MemoryStore();
  return store;
}

export function setStoreForTests(replacement: KeyValueStore): void {
  store = replacement;
}
