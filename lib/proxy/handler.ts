import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { errorResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import { limitApiCall } from '../ops/rate-limit.ts';
import { checkCsrf } from '../security/csrf.ts';
import { checkSessionOrigin } from '../security/session-anomaly.ts';
import { clearSession, loadSession, rewriteSession, writeSessionWithinBudget, type LoadedSession } from '../session/manager.ts';
import { endSession } from '../session/revocation.ts';
import { StoreUnavailableError, type KeyValueStore } from '../stores/store.ts';
import { exchangedTokenFor } from '../tokens/exchange.ts';
import { accessTokenFor, sessionToWrite } from '../tokens/manager.ts';
import type { Session } from '../session/session.ts';
import { admitExchange } from './concurrency.ts';
import { forward, isStreaming, type UpstreamAnswer } from './forward.ts';
import { forwardWithProof } from './dpop.ts';
import { dpopTokenKey, proverFor, type SessionProver } from '../oidc/dpop.ts';
import { StreamLifetime } from './stream-lifetime.ts';
import { headersForBrowser, headersForUpstream } from './headers.ts';
import { buildUpstreamUrl } from './path.ts';
import { rawPathAndQuery } from '../http/raw-target.ts';
import { matchRoute, shadowsLongerRoute, type Route } from './route-table.ts';
import { correlateUpstream } from './correlation.ts';
import { nameRequestRoute } from '../ops/tracing.ts';

/** A session cookie an answer must write: refreshed tokens, or idle activity. */
export interface PendingWrite {
  /** The session as this request leaves it (refreshed, or as loaded). */
  session: Session;
  loaded: LoadedSession;
  /** The route's resource: its token is the last dropped when the cookie budget is tight. */
  resource: string;
}

/**
 * The cookie, computed once the API has answered: other requests may have refreshed the
 * session meanwhile, and writing back an older state would hand the browser a spent
 * refresh token.
 */
async function cookiesToWrite({ session, loaded, resource }: PendingWrite, config: Config, store: KeyValueStore): Promise<string[]> {
  let newest: Session | undefined;
  try {
    newest = await sessionToWrite(session, config, store);
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    // The store stalled after the API answered: nothing newer can be learnt, but a
    // session this request refreshed is newer than the browser's cookie, and dropping it
    // would lose the rotated refresh token. An unchanged session is not written back
    // (the browser may hold a newer cookie from another request).
    return session === loaded.session ? [] : writeSessionWithinBudget(session, loaded.present, config, resource);
  }
  if (!newest) return [];
  // Unchanged: an activity-only re-seal, shared by every request carrying this cookie.
  if (newest === loaded.session) return rewriteSession(loaded, config);
  return writeSessionWithinBudget(newest, loaded.present, config, resource);
}

/**
 * The cookie to write, or none when it cannot be computed (the store unreachable, a seal
 * refused). By then the API has answered, and may have acted on the call (an order
 * placed): its answer is delivered rather than replaced by an error, which would also
 * leave the pooled upstream connection held by a body nobody reads. The browser keeps
 * its cookie; a refresh this request made is adopted by the next one through the
 * successor record, as for an answer that was lost.
 */
export async function cookiesOrNone(pending: PendingWrite, config: Config, store: KeyValueStore): Promise<string[]> {
  try {
    return await cookiesToWrite(pending, config, store);
  } catch (error) {
    log.warn('session_cookie_not_written', {
      errorName: error instanceof Error ? error.name : typeof error,
      errorCode: error instanceof BrokerError ? error.code : undefined,
    });
    return [];
  }
}

/** What steps 4 and 5 of the pipeline leave for the exchange. */
export interface Authorized {
  accessToken?: string;
  /** A `"dpop": true` route: the session's key, which proves each upstream request (dpop.ts). */
  prover?: SessionProver;
  /** The session as this call leaves it (refreshed, or as loaded): the one whose end ends a stream. */
  session?: Session;
  /** A session cookie the answer must write (refreshed tokens or idle activity), computed once the API answered. */
  pending?: PendingWrite;
}

/**
 * Steps 4 and 5 — session and token — shared by API calls and WebSocket upgrades
 * (websocket.ts): the rate limit per session (per address without one) before any refresh
 * or upstream call, a dead cookie cleared so the browser stops sending it, and a session
 * whose refresh token the provider refused ended everywhere. Cookies to clear are pushed
 * onto `setCookies`, so that an answer refused afterwards still carries them.
 */
export async function authorize(request: Request, route: Route, config: Config, store: KeyValueStore, setCookies: string[], peer?: string): Promise<Authorized> {
  if (route.auth === 'none') {
    await limitApiCall(request, config, undefined, peer);
    return {};
  }
  const loaded = await loadSession(request, config, store);
  await limitApiCall(request, config, loaded.session?.id, peer);
  if (!loaded.session) {
    if (loaded.present.length > 0 && loaded.reason !== 'absent') setCookies.push(...clearSession(loaded.present, config));
    if (route.auth === 'required') throw new BrokerError('unauthenticated');
    return {};
  }
  let grant;
  let upstreamToken: string;
  let prover: SessionProver | undefined;
  try {
    await checkSessionOrigin(request, loaded.session, config, store, peer);
    // RFC 9449: a DPoP route's token is bound to the session's key (its own token slot).
    if (route.dpop) prover = await proverFor(loaded.session, config);
    grant = await accessTokenFor(loaded.session, route.resource, config, store, { dpop: prover?.handle });
    // RFC 8693: the route's API gets a token exchanged for its audience and scope alone;
    // the session's own token (refreshed above when it had expired) is only the subject.
    // (`exchange` and `dpop` are refused together in route-table.ts.)
    upstreamToken = route.exchange ? (await exchangedTokenFor(grant.session, grant.token, route.exchange, config, store)).value : grant.token.value;
  } catch (error) {
    if (error instanceof BrokerError && error.endsSession) {
      await endSession(store, config, loaded.session);
      setCookies.push(...clearSession(loaded.present, config));
    }
    throw error;
  }
  const slot = route.dpop ? dpopTokenKey(route.resource) : (route.resource ?? '');
  const pending = grant.changed || loaded.needsWrite ? { session: grant.session, loaded, resource: slot } : undefined;
  return { accessToken: upstreamToken, session: grant.session, pending, prover };
}

/**
 * Any method on `/api/...`: the proxy, as a pipeline whose cheap refusals come first.
 *   1. csrf     — `X-CSRF: 1`, no cross-site fetch metadata, no foreign Origin
 *   2. route    — longest prefix at a segment boundary, not shadowing a longer route; method allowed
 *   3. path     — the remainder cannot leave the route's upstream base
 *   4. session  — required / optional / none
 *   5. token    — fresh for the route's resource, refreshed at most once
 *   6. admit    — within the route's and the session's concurrency caps
 *   7. forward  — headers allow-listed towards the API, cleaned towards the browser,
 *                 private answers kept private, bodies streamed, redirects passed back
 *   8. lifetime — a body still flowing is ended when its session ends (stream-lifetime.ts)
 * Nothing reaches the API unless every step passed.
 */
export async function handleProxy(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  const started = performance.now();
  const observed: Observed = {};
  const response = await proxyPipeline(request, config, store, observed);
  // Labels come from the route table (configuration), never from the request: a path a
  // client made up must not mint a time series (cardinality) or carry its data.
  const route = observed.route ?? 'unmatched';
  metrics.proxyRequests.inc({ route, status: String(response.status) });
  metrics.proxyDuration.observe({ route }, (performance.now() - started) / 1000);
  return response;
}

/** What the pipeline learnt that the metrics may name: the matched route's configured path. */
interface Observed {
  route?: string;
}

async function proxyPipeline(request: Request, config: Config, store: KeyValueStore, observed: Observed): Promise<Response> {
  const setCookies: string[] = [];
  try {
    checkCsrf(request, config);

    // The request-target as the browser sent it when the host has it (the Node front
    // door), so that the path rest and the query reach the API byte for byte; else the
    // URL the framework rebuilt (README, "Front door").
    const url = rawPathAndQuery(request) ?? new URL(request.url);
    const matched = matchRoute(config.routes, url.pathname);
    if (!matched) throw new BrokerError('not_found');
    const { route, remainder } = matched;
    observed.route = route.path;
    nameRequestRoute(request.method, route.path);
    if (shadowsLongerRoute(config.routes, url.pathname, route)) {
      // `/api/orders;x/delete`, `/api/ORDERS/x`, `/api/orders./x` would match `/api` and
      // reach a server that reads them as `/orders/...` (Tomcat, Express, IIS): the
      // `/api/orders` route's methods and auth would be skipped.
      log.warn('proxy_path_refused', { route: route.path, reason: 'it would select another route on a lenient server', pathLength: url.pathname.length });
      throw new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' });
    }
    if (!route.methods.has(request.method)) {
      throw new BrokerError('method_not_allowed', { headers: [['allow', [...route.methods].join(', ')]] });
    }
    const target = buildUpstreamUrl(route, remainder, url.search);
    if (!target.ok) {
      // The reason names a category and a position, never the path or query text (L9):
      // both may carry personal data or an API key.
      log.warn('proxy_path_refused', { route: route.path, reason: target.reason, pathLength: remainder.length, queryLength: url.search.length });
      throw new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' });
    }

    const { accessToken, session: watchedSession, pending, prover } = await authorize(request, route, config, store, setCookies);
    const sessionId = watchedSession?.id;

    const upstreamHeaders = headersForUpstream(request.headers, {
      accessToken,
      // From configuration, never from the request (a forged X-Forwarded-Host must not
      // reach an API that builds links from it).
      forwardedProto: config.forwarded.proto,
      forwardedHost: config.forwarded.host,
      forwardHeaders: route.forwardHeaders,
    });
    correlateUpstream(upstreamHeaders);
    const contentLength = request.headers.get('content-length');
    if (contentLength !== null && /^\d+$/.test(contentLength)) upstreamHeaders.set('content-length', contentLength);

    let answer: UpstreamAnswer | undefined;
    const lifetime = new StreamLifetime(watchedSession, config, store, isStreaming(route, request.headers));
    try {
      // Admitted inside the try: a call refused here still carries the cookie of a refresh it made.
      const release = admitExchange(route, sessionId);
      const forwardOptions = {
        signal: request.signal,
        onSettled: () => {
          release();
          lifetime.settled();
        },
        endSignal: lifetime.signal,
      };
      answer = prover && accessToken !== undefined
        ? await forwardWithProof(target, request.method, upstreamHeaders, request.body, route, forwardOptions, prover, accessToken)
        : await forward(target, request.method, upstreamHeaders, request.body, route, forwardOptions);
      if (answer.body) lifetime.answered();
    } finally {
      // Written once the API has answered (or failed), from the newest state known then:
      // other requests may have refreshed this session meanwhile, and an answer that
      // arrives last must not leave the browser holding a spent refresh token.
      if (pending) setCookies.push(...(await cookiesOrNone(pending, config, store)));
    }
    const headers = headersForBrowser(answer.headers, { authenticated: accessToken !== undefined });
    for (const cookie of setCookies) headers.append('set-cookie', cookie);
    return new Response(answer.body, { status: answer.status, headers });
  } catch (error) {
    return errorResponse(error, setCookies.map((c) => ['set-cookie', c] as [string, string]));
  }
}
