import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { errorResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { checkCsrf } from '../security/csrf.ts';
import { clearSession, loadSession, rewriteSession, writeSession } from '../session/manager.ts';
import { endSession } from '../session/revocation.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { accessTokenFor, newestSession } from '../tokens/manager.ts';
import type { Session } from '../session/session.ts';
import { forward } from './forward.ts';
import { headersForBrowser, headersForUpstream } from './headers.ts';
import { buildUpstreamUrl } from './path.ts';
import { matchRoute } from './route-table.ts';

/**
 * Any method on `/api/...`: the proxy, as a pipeline whose cheap refusals come first.
 *   1. csrf     — `X-CSRF: 1`, no cross-site fetch metadata, no foreign Origin
 *   2. route    — longest prefix at a segment boundary; method allowed
 *   3. path     — the remainder cannot leave the route's upstream base
 *   4. session  — required / optional / none
 *   5. token    — fresh for the route's resource, refreshed at most once
 *   6. forward  — headers cleaned both ways, bodies streamed, redirects passed back
 * Nothing reaches the API unless every step passed.
 */
export async function handleProxy(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  const setCookies: string[] = [];
  try {
    checkCsrf(request, config);

    const url = new URL(request.url);
    const matched = matchRoute(config.routes, url.pathname);
    if (!matched) throw new BrokerError('not_found');
    const { route, remainder } = matched;
    if (!route.methods.has(request.method)) {
      throw new BrokerError('method_not_allowed', { headers: [['allow', [...route.methods].join(', ')]] });
    }
    const target = buildUpstreamUrl(route, remainder, url.search);
    if (!target.ok) {
      log.warn('proxy_path_refused', { route: route.path, reason: target.reason });
      throw new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' });
    }

    let accessToken: string | undefined;
    /** The session as this request refreshed it, when it did (see `newestCookies` below). */
    let refreshed: { session: Session; present: string[] } | undefined;
    if (route.auth !== 'none') {
      const loaded = await loadSession(request, config, store);
      if (!loaded.session) {
        // A dead cookie is cleared so the browser stops sending it.
        if (loaded.present.length > 0 && loaded.reason !== 'absent') setCookies.push(...clearSession(loaded.present, config));
        if (route.auth === 'required') throw new BrokerError('unauthenticated');
      } else {
        let grant;
        try {
          grant = await accessTokenFor(loaded.session, route.resource, config, store);
        } catch (error) {
          if (error instanceof BrokerError && error.endsSession) {
            await endSession(store, loaded.session, config.session.absoluteTimeout);
            setCookies.push(...clearSession(loaded.present, config));
          }
          throw error;
        }
        accessToken = grant.token.value;
        if (grant.changed) {
          refreshed = { session: grant.session, present: loaded.present };
          setCookies.push(...(await writeSession(grant.session, loaded.present, config)));
        }
        else if (loaded.needsWrite) setCookies.push(...(await rewriteSession(loaded, config)));
      }
    }

    const upstreamHeaders = headersForUpstream(request.headers, {
      accessToken,
      // From configuration, never from the request (a forged X-Forwarded-Host must not
      // reach an API that builds links from it).
      forwardedProto: config.forwarded.proto,
      forwardedHost: config.forwarded.host,
    });
    const contentLength = request.headers.get('content-length');
    if (contentLength !== null && /^\d+$/.test(contentLength)) upstreamHeaders.set('content-length', contentLength);

    const answer = await forward(target.url, request.method, upstreamHeaders, request.body, route, request.signal);
    if (refreshed) {
      // Refreshes for other resources may have moved the session on while the API was
      // answering; this answer then carries the newest cookie, so that a slow answer
      // arriving last cannot leave the browser holding a spent refresh token.
      const newest = await newestSession(refreshed.session, config, store);
      if (newest !== refreshed.session) setCookies.splice(0, setCookies.length, ...(await writeSession(newest, refreshed.present, config)));
    }
    const headers = headersForBrowser(answer.headers, { authenticated: accessToken !== undefined });
    for (const cookie of setCookies) headers.append('set-cookie', cookie);
    return new Response(answer.body, { status: answer.status, headers });
  } catch (error) {
    return errorResponse(error, setCookies.map((c) => ['set-cookie', c] as [string, string]));
  }
}
