/**
 * What the code running for one request may know about it without being handed it: its
 * request id (lib/http/request-id.ts), for log lines (lib/log.ts) and the API's
 * `X-Request-Id`. An AsyncLocalStorage follows the request through every await — the
 * front door, the lib/ handler, the store, undici — so no call site threads it through.
 *
 * Anchored on globalThis: Next.js loads a module once per bundle, and a store per copy
 * would lose the context where one bundle's code calls another's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  readonly requestId: string;
  /** The request's child logger, made by lib/log.ts when the request first logs. */
  logger?: { parent: unknown; child: unknown };
}

const KEY = Symbol.for('cloakroom.requestContext');
const holder = globalThis as typeof globalThis & { [KEY]?: AsyncLocalStorage<RequestContext> };
const storage = (holder[KEY] ??= new AsyncLocalStorage<RequestContext>());

export function runInRequestContext<T>(requestId: string, run: () => T): T {
  return storage.run({ requestId }, run);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

/** The id of the request under way, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}
