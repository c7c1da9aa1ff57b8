/**
 * The one table of the broker's own endpoints: path → a handler per method. Both hosts
 * read it — the Node front door (server/front-door.ts, `npm start`) looks a request's
 * path up here, and each app/ route file (Vercel, `next start`, `next dev`) exports
 * `routeHandlers(path)` — so routing is written once and the two cannot drift apart.
 *
 * Adding an endpoint is one line here, plus its app/ route file of two lines:
 *   '/auth/example': methods({ GET: handleExample }),
 *   app/auth/example/route.ts: `export const dynamic = 'force-dynamic';`
 *                              `export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = routeHandlers('/auth/example');`
 */
import { BrokerError } from '../errors.ts';
import { handleClientScript } from '../frontend/client-script.ts';
import { handleBackchannelLogout } from '../oidc/backchannel.ts';
import { handleCallback } from '../oidc/callback.ts';
import { handleClientJwks } from '../oidc/client-jwks.ts';
import { handleLogin } from '../oidc/login.ts';
import { handleLogout } from '../oidc/logout.ts';
import { handleOpsMetrics } from '../ops/metrics-endpoint.ts';
import { opsMethodNotAllowed } from '../ops/ops-auth.ts';
import { handleOpsRevoke, handleOpsSessions } from '../ops/ops-sessions.ts';
import { handleReadiness } from '../ops/readiness.ts';
import { handleProxy } from '../proxy/handler.ts';
import { handleSession } from '../session/endpoint.ts';
import { handleListSessions, handleRevokeSessions } from '../session/sessions-endpoint.ts';
import { endpoint, type EndpointOptions, type Handler } from './handler.ts';
import { scopedRoutes } from './request-scope.ts';
import { jsonResponse, methodNotAllowed } from './responses.ts';

export type Route = (request: Request) => Promise<Response>;

/** The methods a route file can export (Next.js answers others itself). */
export const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

export interface Endpoint {
  /** Every exportable method, filled: the named ones, and the contract's 405 for the rest. */
  readonly handlers: Readonly<Record<RouteMethod, Route>>;
  /** What the `Allow` of a 405 lists. */
  readonly allow: readonly string[];
  /** For a method no route file can export (PROPFIND, …): the catch-all proxy takes it, others answer 405. */
  readonly other: Route;
}

interface MethodsOptions extends EndpointOptions {
  /** The answer to a method not named; default the contract's 405 with `Allow`. */
  notAllowed?: (allow: readonly string[]) => Handler;
}

/** An endpoint that answers the methods named (HEAD as GET, RFC 9110 §9.3.2) and 405 to the rest. */
function methods(named: Partial<Record<'GET' | 'POST', Handler>>, options: MethodsOptions = {}): Endpoint {
  const allow = [...(named.GET ? ['GET', 'HEAD'] : []), ...(named.POST ? ['POST'] : [])];
  // Not wrapped in `endpoint()` by default: a 405 needs neither the configuration nor the Host.
  const refuse: Route = options.notAllowed ? endpoint(options.notAllowed(allow), options) : async () => methodNotAllowed(allow);
  const handlers = Object.fromEntries(ROUTE_METHODS.map((method) => [method, refuse])) as Record<RouteMethod, Route>;
  if (named.GET) handlers.GET = handlers.HEAD = endpoint(named.GET, options);
  if (named.POST) handlers.POST = endpoint(named.POST, options);
  return { handlers, allow, other: refuse };
}

/** One handler for every method, a catch-all's (the proxy decides per route). */
function anyMethod(handler: Handler, options: EndpointOptions = {}): Endpoint {
  const route = endpoint(handler, options);
  const handlers = Object.fromEntries(ROUTE_METHODS.map((method) => [method, route])) as Record<RouteMethod, Route>;
  return { handlers, allow: ROUTE_METHODS, other: route };
}

const health: Handler = async () => jsonResponse({ status: 'ok' });
const notFound: Handler = async () => {
  throw new BrokerError('not_found');
};

/**
 * Exact paths. `checkHost: false` only where a rebinding page gains nothing
 * (lib/http/handler.ts): probes call /healthz and /readyz by address, and the /ops/
 * endpoints demand their own bearer credential.
 */
export const ENDPOINTS: Readonly<Record<string, Endpoint>> = {
  '/auth/login': methods({ GET: handleLogin }),
  '/auth/callback': methods({ GET: handleCallback }),
  '/auth/session': methods({ GET: handleSession }),
  // POST only: logout or ending sessions on GET would let any <img src> do it.
  '/auth/logout': methods({ POST: handleLogout }),
  '/auth/backchannel-logout': methods({ POST: handleBackchannelLogout }),
  '/auth/sessions': methods({ GET: handleListSessions }),
  '/auth/sessions/revoke': methods({ POST: handleRevokeSessions }),
  '/auth/client.js': methods({ GET: handleClientScript }),
  // Fetched by the provider, perhaps by an internal address: a public key set gains nothing from the Host check.
  '/.well-known/jwks.json': methods({ GET: handleClientJwks }, { checkHost: false }),
  '/healthz': methods({ GET: health }, { checkHost: false }),
  '/readyz': methods({ GET: handleReadiness }, { checkHost: false }),
  // The ops gate answers 404 before 405 when OPS_TOKEN is unset or wrong (lib/ops/ops-auth.ts).
  '/ops/revoke': methods({ POST: handleOpsRevoke }, { checkHost: false, notAllowed: opsMethodNotAllowed }),
  '/ops/sessions': methods({ GET: handleOpsSessions }, { checkHost: false, notAllowed: opsMethodNotAllowed }),
  // Prometheus scrapes each instance by address.
  '/ops/metrics': methods({ GET: handleOpsMetrics }, { checkHost: false, notAllowed: opsMethodNotAllowed }),
};

/** Path prefixes (the path itself and everything under it at a segment boundary), after the exact paths. */
export const PREFIX_ENDPOINTS: ReadonlyArray<readonly [string, Endpoint]> = [
  ['/api', anyMethod(handleProxy)],
  // Any other /ops/ path: the contract's JSON 404, not an HTML page.
  ['/ops', anyMethod(notFound, { checkHost: false })],
];

/** The endpoint a request path names, or undefined (the front door hands it to Next.js). */
export function findEndpoint(pathname: string): Endpoint | undefined {
  const exact = ENDPOINTS[pathname];
  if (exact) return exact;
  for (const [prefix, found] of PREFIX_ENDPOINTS) {
    if (pathname === prefix || pathname.startsWith(`${prefix}/`)) return found;
  }
  return undefined;
}

/** The table's key for a path (the exact path, or the prefix that serves it): the name spans carry, never the request's own path. */
export function endpointPathOf(pathname: string): string | undefined {
  if (ENDPOINTS[pathname]) return pathname;
  return PREFIX_ENDPOINTS.find(([prefix]) => pathname === prefix || pathname.startsWith(`${prefix}/`))?.[0];
}

/**
 * What an app/ route file exports: `export const { GET, HEAD, … } = routeHandlers('/auth/login')`,
 * each inside the request scope (request id, span; lib/http/request-scope.ts), as the
 * front door runs them.
 */
export function routeHandlers(path: string): Readonly<Record<RouteMethod, Route>> {
  const found = ENDPOINTS[path] ?? PREFIX_ENDPOINTS.find(([prefix]) => prefix === path)?.[1];
  if (!found) throw new Error(`no endpoint ${path} in lib/http/endpoints.ts`);
  return scopedRoutes(path, found.handlers);
}
