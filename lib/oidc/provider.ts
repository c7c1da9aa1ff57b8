import { Agent, fetch as undiciFetch } from 'undici';
import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import { providerCapabilityProblems } from './capabilities.ts';

/** Outbound calls to the provider give up after this long and count as unreachable. */
const PROVIDER_TIMEOUT_SECONDS = 10;
/** Connecting to the provider gives up after this long: see `providerAgent`. */
const PROVIDER_CONNECT_TIMEOUT_MS = 3_000;
/** A lasting refusal or outage is logged again at most this often (one line per minute, not per request). */
const REPEAT_LOG_INTERVAL_MS = 60_000;

/** What `/readyz` and the operator learn about the identity provider. */
export interface ProviderHealth {
  /**
   * `ok`: metadata loaded and nothing refused since. `down`: discovery failed or has not
   * run yet. `misconfigured`: the provider refused the client's credentials — no retry
   * fixes that, an operator must.
   */
  status: 'ok' | 'down' | 'misconfigured';
  /** An operator's sentence: what is wrong and which variable to check. Never a secret. */
  problem?: string;
  /** Epoch milliseconds of the observation. */
  since?: number;
}

interface ProviderState {
  /**
   * The provider's metadata and this client's configuration, discovered once per process
   * and shared by every request. A failed discovery is not cached: the next request
   * tries again, and meanwhile callers answer 503 `idp_unavailable`.
   */
  discovered: Promise<client.Configuration> | undefined;
  health: ProviderHealth;
  misconfiguredLoggedAt: number;
  /** The last discovery problem logged, and when: a provider down for an hour is one line a minute, not one per request. */
  discoveryLogged: { problem: string; at: number } | undefined;
  /** Set when discovery succeeded but the provider lacks what the route table needs. */
  unsuitable?: string[];
}

// On globalThis: Next.js may evaluate this module once per route bundle, and every copy
// must share one discovery and one health record (AUDIT "Reliance on Next.js", 1).
const STATE = Symbol.for('cloakroom.oidc.provider');
const NOT_CONTACTED: ProviderHealth = { status: 'down', problem: 'the identity provider has not been contacted yet' };
const shared = globalThis as { [STATE]?: ProviderState };
const state: ProviderState = (shared[STATE] ??= { discovered: undefined, health: NOT_CONTACTED, misconfiguredLoggedAt: 0, discoveryLogged: undefined });

/** The seam for readiness (`GET /readyz`): the provider's last known state, without a network call. */
export function providerHealth(): ProviderHealth {
  return { ...state.health };
}

const CLIENT_REFUSED =
  'the identity provider refused the client\'s credentials: check OIDC_CLIENT_ID / OIDC_CLIENT_SECRET / OIDC_CLIENT_AUTH' +
  ' (a secret holding "+", "/" or "=" may need OIDC_CLIENT_AUTH=client_secret_basic_unencoded, see README)';

/**
 * RFC 6749 §2.3.1 says the Basic credentials are form-encoded before base64, which
 * openid-client does; several providers (glewlwyd among them) compare the raw string, so
 * a base64 secret's `+`, `/` or `=` never matches. This variant sends them unencoded.
 * A client id or secret containing ":" cannot be sent this way (RFC 7617 §2).
 */
function clientSecretBasicUnencoded(clientSecret: string): client.ClientAuth {
  return (_server, metadata, _body, headers) => {
    headers.set('authorization', `Basic ${Buffer.from(`${metadata.client_id}:${clientSecret}`, 'utf8').toString('base64')}`);
  };
}

async function clientAuthentication(config: Config): Promise<client.ClientAuth> {
  const { clientAuth, clientSecret, clientPrivateKey } = config.oidc;
  if (clientAuth === 'client_secret_post') return client.ClientSecretPost(clientSecret);
  if (clientAuth === 'client_secret_basic_unencoded') return clientSecretBasicUnencoded(clientSecret as string);
  if (clientAuth === 'private_key_jwt') {
    // The first key of OIDC_CLIENT_PRIVATE_KEY signs (lib/config/client-keys.ts filled in
    // kid and alg); its kid in the header lets a provider holding our jwks_uri pick it.
    const jwk = config.oidc.clientKeys?.[0]?.privateJwk ?? (clientPrivateKey as JsonWebKey & { kid: string; alg: string });
    const { importJWK } = await import('jose');
    const key = (await importJWK(jwk, jwk.alg)) as CryptoKey;
    return client.PrivateKeyJwt({ key, kid: jwk.kid });
  }
  return client.ClientSecretBasic(clientSecret);
}

/** Moves the health record to `misconfigured` and tells the operator, once a minute at most. */
function recordClientRefused(endpoint: string, status: number): void {
  const now = Date.now();
  const first = state.health.status !== 'misconfigured';
  state.health = { status: 'misconfigured', problem: CLIENT_REFUSED, since: first ? now : state.health.since };
  if (first || now - state.misconfiguredLoggedAt >= REPEAT_LOG_INTERVAL_MS) {
    state.misconfiguredLoggedAt = now;
    log.error('idp_client_rejected', { problem: CLIENT_REFUSED, endpoint, status });
  }
}

/** A fetch Response of either class (the global one, or the `undici` package's). */
export function isHttpResponse(value: unknown): value is Response {
  return value instanceof Response || (typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Response]');
}

/**
 * The provider's connections. Connecting gives up well before the whole call's
 * `PROVIDER_TIMEOUT_SECONDS`, so that an unreachable provider (packets dropped) fails as
 * "never connected" — nothing was sent, the refresh token is intact, the session is kept —
 * instead of as a timeout after which the broker cannot know whether the provider rotated
 * the token (lib/tokens/failure.ts). Idle keep-alive sockets are dropped before a typical
 * server's own idle timeout (Node's 5 s), so a refresh is rarely written onto a socket the
 * provider is just closing, which would leave its outcome unknown too.
 */
const providerAgent = new Agent({ connect: { timeout: PROVIDER_CONNECT_TIMEOUT_MS }, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 4_000 });

/**
 * Every answer of the provider passes here (openid-client's `customFetch`, meant for
 * tracing): a refusal of the client's own credentials is a configuration error whoever
 * made the call — sign-in, refresh, PAR or revocation — and a later success clears it.
 * Only error bodies are read (a clone), never a body carrying tokens.
 */
const observingFetch: client.CustomFetch = async (url, options) => {
  // undici's own fetch: Node's built-in one cannot take this package's Agent. Its
  // Response is another class than the global one, which openid-client accepts (it checks
  // by shape); code here checks with `isHttpResponse`, never `instanceof Response`.
  const response = (await undiciFetch(url, { ...(options as object), dispatcher: providerAgent } as Parameters<typeof undiciFetch>[1])) as unknown as Response;
  // openid-client POSTs only to client-authenticated endpoints (token, PAR, revocation).
  if (options.method !== 'POST') return response;
  const endpoint = new URL(url).pathname;
  if (response.status === 401) {
    recordClientRefused(endpoint, 401);
  } else if (response.status === 400) {
    const error = await response
      .clone()
      .json()
      .then((body: unknown) => (body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined))
      .catch(() => undefined);
    if (error === 'invalid_client' || error === 'unauthorized_client') recordClientRefused(endpoint, 400);
  } else if (response.ok && state.health.status === 'misconfigured') {
    state.health = { status: 'ok', since: Date.now() };
    log.info('idp_client_accepted', { endpoint });
  }
  return response;
};

async function discover(config: Config): Promise<client.Configuration> {
  const { issuer, clientId, allowInsecureHttp } = config.oidc;
  const configuration = await client.discovery(
    new URL(issuer),
    clientId,
    { redirect_uris: [config.redirectUri], response_types: ['code'] },
    await clientAuthentication(config),
    {
      execute: allowInsecureHttp ? [client.allowInsecureRequests] : [],
      timeout: PROVIDER_TIMEOUT_SECONDS,
      [client.customFetch]: observingFetch,
    },
  );
  // openid-client compares the discovered `issuer` with the URL it fetched, and a URL
  // ignores a trailing slash on an origin; compare with the configured string too, so a
  // trailing-slash difference is a loud configuration error rather than ID tokens whose
  // `iss` never matches (OpenID Connect Discovery §4.3).
  const advertised = configuration.serverMetadata().issuer;
  if (advertised !== issuer) throw new IssuerMismatch(issuer, advertised, discoveryUrl(issuer));
  const unsuitable = providerCapabilityProblems(config, configuration.serverMetadata().grant_types_supported);
  if (unsuitable.length > 0) throw new ProviderUnsuitable(unsuitable);
  configuration.timeout = PROVIDER_TIMEOUT_SECONDS;
  configuration[client.customFetch] = observingFetch;
  return configuration;
}

/** The broker's own issuer check failed: carries both values so the log line can name them. */
class IssuerMismatch extends Error {
  readonly code = 'ISSUER_MISMATCH';
  readonly expected: string;
  readonly received: string;
  readonly url: string;
  constructor(expected: string, received: string, url: string) {
    super(`the discovery document names issuer "${received}" but OIDC_ISSUER is "${expected}"`);
    this.expected = expected;
    this.received = received;
    this.url = url;
  }
}

/**
 * The provider lacks what the route table needs (a grant): a configuration error no
 * retry fixes. `npm start` exits listing `problems`; a later discovery logs them.
 */
class ProviderUnsuitable extends Error {
  readonly code = 'PROVIDER_UNSUITABLE';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** The configuration problems the last discovery found with the provider, if that is why it failed. */
export function providerConfigurationProblems(): string[] | undefined {
  return state.unsuitable;
}

/** Where openid-client looks for the discovery document (OpenID Connect Discovery §4). */
function discoveryUrl(issuer: string): string {
  const url = new URL(issuer);
  url.pathname = `${url.pathname.replace(/\/$/, '')}/.well-known/openid-configuration`;
  return url.href;
}

/**
 * A provider failure in words an operator acts on: what failed, where, with which HTTP
 * status, and what to check. Built from error codes and fields, never from class names
 * (a production build minifies those: `errorName: "rc"` says nothing).
 */
export interface ProviderProblem {
  problem: string;
  /** A stable code: openid-client's `OAUTH_*`, Node's `ECONNREFUSED`-style codes, or the broker's own. */
  code: string;
  status?: number;
  url?: string;
  /** For an issuer mismatch: what OIDC_ISSUER says, and what the provider says. */
  expectedIssuer?: string;
  receivedIssuer?: string;
}

export function describeProviderError(error: unknown, issuer?: string): ProviderProblem {
  if (error instanceof ProviderUnsuitable) return { problem: error.message, code: error.code };
  if (error instanceof IssuerMismatch) {
    return {
      problem: `${error.message}: set OIDC_ISSUER to exactly "${error.received}" (a trailing slash counts)`,
      code: error.code,
      url: error.url,
      expectedIssuer: error.expected,
      receivedIssuer: error.received,
    };
  }
  const response = httpResponseOf(error);
  const code = errorCode(error);
  if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && issuer) {
    const received = (error as { cause?: { body?: { issuer?: unknown } } }).cause?.body?.issuer;
    return {
      problem: `the discovery document names issuer "${String(received)}" but OIDC_ISSUER is "${issuer}": set OIDC_ISSUER to the provider's issuer exactly`,
      code,
      url: issuer ? discoveryUrl(issuer) : undefined,
      expectedIssuer: issuer,
      receivedIssuer: typeof received === 'string' ? received : undefined,
    };
  }
  if (response) {
    const url = response.url || (issuer ? discoveryUrl(issuer) : undefined);
    const hint = issuer && url === discoveryUrl(issuer) ? ': check OIDC_ISSUER (its discovery document must be there)' : '';
    const body = error instanceof client.ResponseBodyError ? ` with error "${safeCode(error.error) ?? 'unknown'}"` : '';
    return { problem: `the identity provider answered HTTP ${response.status}${body} at ${url ?? 'its endpoint'}${hint}`, code, status: response.status, url };
  }
  if (error instanceof client.WWWAuthenticateChallengeError) {
    return { problem: `the identity provider answered HTTP ${error.status} with a WWW-Authenticate challenge`, code, status: error.status };
  }
  if (code === 'TimeoutError' || code === 'AbortError') {
    return { problem: `the identity provider did not answer within ${PROVIDER_TIMEOUT_SECONDS} s${issuer ? ` (${issuer})` : ''}`, code: 'TIMEOUT' };
  }
  const network = networkCode(error);
  if (network) {
    return { problem: `the identity provider could not be reached${issuer ? ` at ${issuer}` : ''} (${network}): check OIDC_ISSUER and the network`, code: network };
  }
  return { problem: `the identity provider's answer was refused (${code})`, code };
}

function safeCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[a-z_]{1,64}$/.test(value) ? value : undefined;
}

/** The HTTP answer an openid-client error was built from, when there was one. */
function httpResponseOf(error: unknown): Response | undefined {
  if (error instanceof client.ResponseBodyError) return error.response;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return isHttpResponse(cause) ? cause : undefined;
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(code)) return code;
  // DOMException's `name` is part of the platform, not a minifiable class name.
  if (error instanceof DOMException) return error.name;
  return 'UNKNOWN';
}

/** `fetch failed` hides the reason one or two `cause`s down (undici: ECONNREFUSED, ENOTFOUND…). */
function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export async function getProvider(config: Config): Promise<client.Configuration> {
  if (!state.discovered) {
    const attempt = discover(config);
    state.discovered = attempt;
    attempt.then(
      () => {
        state.unsuitable = undefined;
        if (state.health.status === 'down') state.health = { status: 'ok', since: Date.now() };
      },
      (error: unknown) => {
        if (state.discovered === attempt) state.discovered = undefined;
        const described = describeProviderError(error, config.oidc.issuer);
        // The first line an operator reads about it names both issuers (or the URL and status).
        const now = Date.now();
        state.unsuitable = error instanceof ProviderUnsuitable ? error.problems : undefined;
        state.health = { status: error instanceof ProviderUnsuitable ? 'misconfigured' : 'down', problem: described.problem, since: now };
        const logged = state.discoveryLogged;
        if (logged && logged.problem === described.problem && now - logged.at < REPEAT_LOG_INTERVAL_MS) return;
        state.discoveryLogged = { problem: described.problem, at: now };
        log.error('discovery_failed', {
          problem: described.problem,
          issuer: config.oidc.issuer,
          expectedIssuer: described.expectedIssuer,
          receivedIssuer: described.receivedIssuer,
          url: described.url,
          status: described.status,
          errorCode: described.code,
        });
      },
    );
  }
  try {
    return await state.discovered;
  } catch (error) {
    if (error instanceof BrokerError) throw error;
    throw new BrokerError('idp_unavailable', {
      publicMessage: error instanceof IssuerMismatch || error instanceof ProviderUnsuitable ? 'the identity provider is misconfigured' : undefined,
      cause: error,
    });
  }
}

/**
 * Discovery once, for `npm start` / `instrumentation.ts` and readiness: logs the outcome
 * (`provider_ready`, or `discovery_failed` naming what is wrong) and never throws, because
 * the provider may simply be down at boot and come back later.
 */
export async function probeProvider(config: Config): Promise<ProviderHealth> {
  const before = state.health.status;
  try {
    const provider = await getProvider(config);
    // Once per recovery, not once per readiness probe.
    if (before === 'down') log.info('provider_ready', { issuer: provider.serverMetadata().issuer });
  } catch {
    // already logged by getProvider
  }
  return providerHealth();
}

export function resetProviderForTests(): void {
  state.discovered = undefined;
  state.health = NOT_CONTACTED;
  state.misconfiguredLoggedAt = 0;
  state.discoveryLogged = undefined;
  state.unsuitable = undefined;
}

/**
 * What a failed call to the token endpoint means for the session (RFC 6749 §5.2):
 *  - `grant_gone`: any other 4xx — `invalid_grant`, but also what providers send instead
 *    (`invalid_request` for an unknown refresh token, an empty 400, a JSON body without
 *    `error`). Retrying would send a dead token forever; the session is over.
 *  - `client_misconfigured`: `invalid_client`/`unauthorized_client`, or any 401 (§5.2
 *    reserves it for client authentication, e.g. a bare `WWW-Authenticate: Basic`).
 *    No retry helps, but the grant may be fine: an operator must fix the credentials.
 *  - `outage`: 5xx, 429, 408, a network failure, a timeout, an unreadable 2xx.
 */
export type TokenEndpointFailure = 'grant_gone' | 'client_misconfigured' | 'outage';

export function classifyTokenEndpointError(error: unknown): TokenEndpointFailure {
  let status: number | undefined;
  let oauthError: string | undefined;
  if (error instanceof client.ResponseBodyError) {
    status = error.status;
    oauthError = error.error;
  } else if (error instanceof client.WWWAuthenticateChallengeError) {
    status = error.status;
    oauthError = error.cause[0]?.parameters.error;
  } else {
    const response = httpResponseOf(error);
    // openid-client also refuses 2xx answers it cannot use; only an error status counts here.
    if (response && !response.ok) status = response.status;
  }
  if (status === undefined || status < 400 || status >= 500 || status === 429 || status === 408) return 'outage';
  if (oauthError === 'invalid_client' || oauthError === 'unauthorized_client') return 'client_misconfigured';
  if (status === 401 && oauthError !== 'invalid_grant') return 'client_misconfigured';
  return 'grant_gone';
}

/**
 * Kept for callers written before the classifier: true when the grant is gone, whatever
 * shape the provider gave the refusal. New code calls `tokenEndpointFailure`.
 */
export function isInvalidGrant(error: unknown): boolean {
  return classifyTokenEndpointError(error) === 'grant_gone';
}

/**
 * The error to throw for a failed refresh, logged in words an operator acts on:
 *  - grant gone → 401 `session_expired`, the cookie is cleared;
 *  - client refused → 503 `idp_unavailable`, session kept: the user did nothing wrong and
 *    the grant may be intact, so once the operator fixes the credentials every session
 *    resumes; ending them would sign out everyone for a configuration typo. The health
 *    record (`/readyz`) and `idp_client_rejected` say what to fix;
 *  - outage → 503 `idp_unavailable`, session kept.
 */
export function tokenEndpointFailure(error: unknown, context: { resource?: string } = {}): BrokerError {
  const kind = classifyTokenEndpointError(error);
  const described = describeProviderError(error);
  const resource = context.resource || undefined;
  if (kind === 'grant_gone') {
    log.info('refresh_rejected', { resource, status: described.status, providerError: providerErrorCode(error) });
    return new BrokerError('session_expired', { publicMessage: 'the identity provider ended this session', cause: error, endsSession: true });
  }
  if (kind === 'client_misconfigured') {
    log.error('refresh_failed', { resource, problem: CLIENT_REFUSED, status: described.status, errorCode: 'CLIENT_REFUSED' });
    return new BrokerError('idp_unavailable', { publicMessage: 'the identity provider refused this service; an operator has been told', cause: error });
  }
  log.warn('refresh_failed', { resource, problem: described.problem, status: described.status, errorCode: described.code });
  return new BrokerError('idp_unavailable', { cause: error });
}

export function providerErrorCode(error: unknown): string | undefined {
  // A 401 with `WWW-Authenticate: Basic error="invalid_client"` (oidc-provider, when the
  // client authenticated with Basic) is an answer like any other error body, not an outage.
  const code =
    error instanceof client.ResponseBodyError || error instanceof client.AuthorizationResponseError
      ? error.error
      : error instanceof client.WWWAuthenticateChallengeError
        ? error.cause[0]?.parameters.error
        : undefined;
  // Only a well-formed RFC 6749 error code is ever repeated to a client.
  return safeCode(code);
}
