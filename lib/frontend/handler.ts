/**
 * The web app on the broker's origin (BFF_FRONTEND_DIR or BFF_FRONTEND_UPSTREAM): every
 * path that is not a broker endpoint. As a pipeline:
 *   1. reserved — `/api/`, `/auth/`, `/ops/`, `/.well-known/` that no endpoint took: the
 *                 contract's JSON 404, never the app's index.html (a typo in an API path
 *                 must not answer 200 with HTML that a client then fails to parse)
 *   2. path     — decoded once, refused when it could leave the directory (paths.ts)
 *   3. gate     — BFF_FRONTEND_AUTH=required: an HTML navigation without a session is sent
 *                 to sign in with `returnTo`; assets are not gated (gate.ts)
 *   4. serve    — the file, or index.html for an unknown page (static), or the app's
 *                 server (upstream), with the security headers of policy.ts
 */
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import type { Endpoint, Route as EndpointRoute } from '../http/endpoints.ts';
import { endpoint, type Handler } from '../http/handler.ts';
import { rawPathAndQuery } from '../http/raw-target.ts';
import { errorResponse } from '../http/responses.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { gateNavigation, isHtmlNavigation } from './gate.ts';
import { frontendPathSegments, hasFileExtension, isReservedPath } from './paths.ts';
import { frontendContentSecurityPolicy, securityHeaders } from './policy.ts';
import { cacheControlFor, contentTypeFor, etagOf, fileBody, findFile, notModified, type FoundFile } from './static-files.ts';
import { forwardToFrontend } from './upstream.ts';

/** The headers every frontend answer carries (cached per configuration: the policy is fixed). */
const policyCache = new WeakMap<Config, Array<[string, string]>>();
export function frontendSecurityHeaders(config: Config): Array<[string, string]> {
  let headers = policyCache.get(config);
  if (!headers) {
    // The sign-out form's 303 goes on to the provider's end-session endpoint, and
    // browsers check form-action on redirects too.
    const policy = frontendContentSecurityPolicy(config.frontend?.cspExtension ?? {}, { 'form-action': [new URL(config.oidc.issuer).origin] });
    headers = securityHeaders(policy, config.secureCookies);
    policyCache.set(config, headers);
  }
  return headers;
}

function withSecurityHeaders(response: Response, config: Config): Response {
  for (const [name, value] of frontendSecurityHeaders(config)) response.headers.set(name, value);
  return response;
}

function serveFile(request: Request, file: FoundFile, cacheControl: string): Response {
  const etag = etagOf(file);
  const headers = new Headers({ 'cache-control': cacheControl, etag, 'last-modified': new Date(file.mtimeMs).toUTCString() });
  if (notModified(request, etag)) return new Response(null, { status: 304, headers });
  headers.set('content-type', contentTypeFor(file.path));
  headers.set('content-length', String(file.size));
  return new Response(fileBody(file, request.method), { status: 200, headers });
}

async function serveStatic(request: Request, config: Config, store: KeyValueStore, segments: string[], pathAndQuery: string): Promise<Response> {
  const root = config.frontend?.dir as string;
  const navigation = isHtmlNavigation(request);
  const file = await findFile(root, segments);
  if (file) {
    if (file.path.endsWith('.html') && navigation) {
      const refused = await gateNavigation(request, config, store, pathAndQuery);
      if (refused) return refused;
    }
    return serveFile(request, file, cacheControlFor(segments));
  }
  // SPA fallback: only a page the app routes itself — an HTML navigation to a path
  // without a file extension. A missing `/assets/app-1234abcd.js` is a 404, never HTML
  // (a stale tab would run the HTML as a script, or show a blank page, with a 200).
  if (!navigation || hasFileExtension(segments)) throw new BrokerError('not_found');
  const refused = await gateNavigation(request, config, store, pathAndQuery);
  if (refused) return refused;
  const index = await findFile(root, ['index.html']);
  if (!index) throw new BrokerError('not_found');
  // With a gate, the app shell is for signed-in browsers only: no cache keeps it.
  const shell = serveFile(request, index, config.frontend?.auth === 'required' ? 'no-store' : 'no-cache');
  // The same URL answers a fetch() with 404: a cache must tell the two apart.
  shell.headers.set('vary', 'sec-fetch-mode, accept');
  return shell;
}

async function frontendAnswer(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  const raw = rawPathAndQuery(request) ?? (({ pathname, search }) => ({ pathname, search }))(new URL(request.url));
  const frontend = config.frontend;
  if (!frontend) throw new BrokerError('not_found');
  const upstream = frontend.upstream !== undefined;
  if (!upstream && request.method !== 'GET' && request.method !== 'HEAD') {
    throw new BrokerError('method_not_allowed', { headers: [['allow', 'GET, HEAD']] });
  }
  // A dev server has dot-directories of its own (Vite's /node_modules/.vite/deps/).
  const path = frontendPathSegments(raw.pathname, { allowDotfiles: upstream });
  if (!path.ok) {
    if (path.hidden) throw new BrokerError('not_found');
    throw new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' });
  }
  if (!upstream) return serveStatic(request, config, store, path.segments, raw.pathname + raw.search);
  if (isHtmlNavigation(request)) {
    const refused = await gateNavigation(request, config, store, raw.pathname + raw.search);
    if (refused) return refused;
  }
  return forwardToFrontend(request, raw.pathname + raw.search, config);
}

/** Every answer of the frontend, errors included, carries its security headers. */
const handleFrontend: Handler = async (request, config, store) => {
  let response: Response;
  try {
    response = await frontendAnswer(request, config, store);
  } catch (error) {
    response = errorResponse(error);
  }
  return withSecurityHeaders(response, config);
};

const frontendRoute: EndpointRoute = endpoint(handleFrontend);

const reservedNotFound: EndpointRoute = async () => errorResponse(new BrokerError('not_found'));

function everyMethod(route: EndpointRoute): Endpoint {
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
  const handlers = Object.fromEntries(methods.map((method) => [method, route])) as Endpoint['handlers'];
  return { handlers, allow: methods, other: route };
}

const FRONTEND_ENDPOINT = everyMethod(frontendRoute);
const RESERVED_ENDPOINT = everyMethod(reservedNotFound);

/**
 * What the front door does with a path no broker endpoint took, when a frontend is
 * configured: the app's endpoint, the contract's 404 for a reserved prefix, or
 * undefined for Next.js (`/_next/*`, the broker's own error pages' assets).
 */
export function frontendEndpoint(pathname: string): Endpoint | undefined {
  if (pathname === '/_next' || pathname.startsWith('/_next/')) return undefined;
  // `/_next/` stays Next's (the broker's own error pages' assets).
  if (isReservedPath(pathname)) return RESERVED_ENDPOINT;
  return FRONTEND_ENDPOINT;
}
