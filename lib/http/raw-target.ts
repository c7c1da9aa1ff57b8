/**
 * The request-target exactly as the client sent it (RFC 9112 §3.2, origin-form), for a
 * host that has it: the Node front door (server/). A web `Request` can only carry a URL
 * that the WHATWG parser has re-serialised (`'` → `%27`, `"` → `%22`, `<` → `%3C`), so the
 * raw bytes travel beside it, keyed by the Request object itself: nothing a client sends
 * (a header, a query parameter) can set or forge it. Under `next start` or Vercel no host
 * sets it and readers fall back to `request.url` (README, "Front door").
 *
 * Anchored on globalThis: Next.js bundles its own copy of lib/ beside the one the front
 * door imports, and both must see the same map.
 */
const KEY = Symbol.for('cloakroom.http.raw-target');
const anchored = globalThis as typeof globalThis & { [KEY]?: WeakMap<Request, string> };
const targets: WeakMap<Request, string> = (anchored[KEY] ??= new WeakMap());

export function setRawTarget(request: Request, target: string): void {
  targets.set(request, target);
}

/** The raw path and query (`/api/x?y=%20z`), split at the first `?`, or undefined when the host gave none. */
export function rawPathAndQuery(request: Request): { pathname: string; search: string } | undefined {
  const target = targets.get(request);
  if (target === undefined) return undefined;
  const mark = target.indexOf('?');
  return mark === -1 ? { pathname: target, search: '' } : { pathname: target.slice(0, mark), search: target.slice(mark) };
}
