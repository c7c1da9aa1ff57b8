import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import { metrics } from '../ops/metrics.ts';
import { checkSameOrigin } from '../security/csrf.ts';
import { clearSession, forgetSession, loadSession } from '../session/manager.ts';
import { endSession } from '../session/revocation.ts';
import { unindexSessions } from '../session/session-index.ts';
import { takeIdTokenHint } from '../session/storage-hint.ts';
import { sessionHandle } from '../session/session.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { forgetRefreshRecord, liveRefreshTokens } from '../tokens/manager.ts';
import { describeProviderError, getProvider } from './provider.ts';

const REVOCATION_UNSUPPORTED =
  'the identity provider advertises no revocation endpoint (RFC 7009): the refresh token stays valid there until it expires;' +
  ' drop offline_access from OIDC_SCOPES where the provider would issue an offline token (see README, provider recipes)';

/**
 * `POST /auth/logout`: ends the session here and at the provider.
 *  1. same-origin only — a cross-site form must not sign the user out (logout CSRF);
 *  2. the session id is recorded as ended, so a copy of the cookie is dead too;
 *  3. the refresh token is revoked (RFC 7009) so it is worthless even if it leaked;
 *  4. the cookie is expired with its own attributes;
 *  5. the browser goes to the provider's end_session_endpoint (RP-Initiated Logout 1.0)
 *     with `client_id` — or `id_token_hint` from the store when OIDC_END_SESSION_HINT=id_token
 *     — or, without one, home.
 * The provider being unreachable does not keep the user signed in here.
 */
export async function handleLogout(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  checkSameOrigin(request, config);
  const loaded = await loadSession(request, config, store);
  const headers = new Headers({ 'cache-control': 'no-store' });
  for (const cookie of clearSession(loaded.present, config)) headers.append('set-cookie', cookie);

  let location = `${config.appOrigin}/`;
  const session = loaded.session;
  if (session) {
    await endSession(store, config, session);
    metrics.sessionsEnded.inc({ reason: 'logout' });
    // The live refresh token is the session record's, not necessarily the cookie's: an
    // answer that rotated it may never have reached the browser (AUDIT L1).
    const refreshTokens = await liveRefreshTokens(session, config, store);
    await forgetRefreshRecord(session, config, store);
    // SESSION_STORAGE=server: the record goes too, so a copied cookie finds nothing.
    await forgetSession(session, config, store);
    await unindexSessions(store, config, session.iss, session.sub, new Set([session.id]));
    const idTokenHint = await takeIdTokenHint(store, config, session);
    try {
      const provider = await getProvider(config);
      const metadata = provider.serverMetadata();
      if (metadata.revocation_endpoint) {
        for (const refreshToken of refreshTokens) {
          await client
            .tokenRevocation(provider, refreshToken, { token_type_hint: 'refresh_token' })
            .catch((error: unknown) => log.warn('revocation_failed', { problem: describeProviderError(error).problem, errorCode: describeProviderError(error).code }));
        }
      } else if (refreshTokens.length > 0) {
        // Nothing to call: the refresh token outlives this logout at the provider (an
        // offline one may outlive the provider's own session too). Say so, never silently.
        log.warn('revocation_unsupported', { problem: REVOCATION_UNSUPPORTED });
      }
      if (metadata.end_session_endpoint) {
        // RP-Initiated Logout 1.0 §2: `client_id` names the client, so that the provider
        // accepts post_logout_redirect_uri without an ID token in this browser-visible URL
        // (history, the provider's access logs). Only providers that insist get the hint.
        const parameters: Record<string, string> = {
          post_logout_redirect_uri: `${config.appOrigin}/`,
          state: client.randomState(),
          client_id: config.oidc.clientId,
        };
        if (idTokenHint) parameters.id_token_hint = idTokenHint;
        location = client.buildEndSessionUrl(provider, parameters).href;
      }
    } catch (error) {
      log.warn('logout_provider_unavailable', { errorName: error instanceof Error ? error.name : 'unknown' });
    }
    log.info('sign_out', { session: sessionHandle(session) });
  }
  headers.set('location', location);
  return new Response(null, { status: 303, headers });
}
