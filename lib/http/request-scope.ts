/**
 * What every broker request runs inside, on both hosts (the front door and the app/ route
 * files): its request id (taken or made, lib/http/request-id.ts) in the request context
 * that log lines read, its span (lib/ops/tracing.ts), and `X-Request-Id` on the answer —
 * every answer, refusals included, so a user's report of a 401 names the log lines.
 */
import { traceRequest } from '../ops/tracing.ts';
import { runInRequestContext } from './request-context.ts';
import { REQUEST_ID_HEADER, requestIdFrom } from './request-id.ts';

export type Route = (request: Request) => Promise<Response>;

/**
 * `route` wrapped for one endpoint. `endpointPath` is the endpoint's key in
 * lib/http/endpoints.ts (configuration, never the request's path): the span's route.
 * `decidedId`: the id a host already chose (the front door, which also answers some
 * requests itself).
 */
export function inRequestScope(endpointPath: string, route: Route, request: Request, decidedId?: string): Promise<Response> {
  const requestId = decidedId ?? requestIdFrom(request.headers.get(REQUEST_ID_HEADER));
  return runInRequestContext(requestId, () =>
    traceRequest(request.method, endpointPath, request.headers, async () => withRequestId(await route(request), requestId)),
  );
}

/** Every method of an endpoint, each wrapped (the app/ route files' exports). */
export function scopedRoutes<M extends string>(endpointPath: string, routes: Readonly<Record<M, Route>>): Readonly<Record<M, Route>> {
  return Object.fromEntries(Object.entries<Route>(routes).map(([method, route]) => [method, (request: Request) => inRequestScope(endpointPath, route, request)])) as Record<M, Route>;
}

/** The answer with `X-Request-Id`. A Response with immutable headers (`Response.redirect`) is rebuilt around the same body. */
function withRequestId(response: Response, requestId: string): Response {
  try {
    response.headers.set(REQUEST_ID_HEADER, requestId);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    headers.set(REQUEST_ID_HEADER, requestId);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}
