import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { limitSignIn } from '../ops/rate-limit.ts';
import { safeReturnTo } from '../security/return-to.ts';
import { startTransaction } from '../session/transactions.ts';
import { getProvider } from './provider.ts';
import { dpopProviderProblems, newSessionKey, proverForKey, routesNeedDPoP, type DPoPPrivateJwk } from './dpop.ts';

/**
 * `GET /auth/login?returnTo=/path`: starts the authorization-code flow with PKCE S256
 * (RFC 7636), `state` and `nonce`, pushed to the provider first when it supports PAR
 * (RFC 9126), so the request's parameters never travel through the browser.
 */
export async function handleLogin(request: Request, config: Config): Promise<Response> {
  // First: each sign-in start costs the provider a PAR call (AUDIT.md M10).
  await limitSignIn(request, config);
  const url = new URL(request.url);
  // Only a same-origin path: anything else would make the broker an open redirector.
  const returnTo = safeReturnTo(url.searchParams.get('returnTo'));
  const provider = await getProvider(config);

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = new URLSearchParams({
    // Never derived from Host or X-Forwarded-*: a forged header must not move the code.
    redirect_uri: config.redirectUri,
    response_type: 'code',
    scope: config.oidc.scopes,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  if (config.oidc.prompt) parameters.set('prompt', config.oidc.prompt);
  // RFC 8707: every API audience is asked for at sign-in, so that later refreshes may
  // narrow to one resource at a time.
  for (const resource of config.oidc.resources) parameters.append('resource', resource);
  // RFC 9449 §10: the code is bound to the session's DPoP key, so a stolen code cannot be
  // redeemed without it; the key is made here and travels sealed in the transaction.
  let dpopKey: DPoPPrivateJwk | undefined;
  if (routesNeedDPoP(config) && dpopProviderProblems(config, provider.serverMetadata()).length === 0) {
    dpopKey = await newSessionKey();
    parameters.set('dpop_jkt', await (await proverForKey(dpopKey, config)).thumbprint);
  }

  let authorizationUrl: URL;
  try {
    authorizationUrl = provider.serverMetadata().pushed_authorization_request_endpoint
      ? await client.buildAuthorizationUrlWithPAR(provider, parameters)
      : client.buildAuthorizationUrl(provider, parameters);
  } catch (error) {
    // A refused or failed push is the provider's problem, not the user's request.
    throw new BrokerError('idp_unavailable', { cause: error });
  }

  const headers = new Headers({ location: authorizationUrl.href, 'cache-control': 'no-store' });
  const setCookies = await startTransaction(
    request,
    { state, nonce, codeVerifier, returnTo, createdAt: Date.now(), ...(dpopKey ? { dpopKey } : {}) },
    config,
  );
  for (const cookie of setCookies) headers.append('set-cookie', cookie);
  return new Response(null, { status: 302, headers });
}
