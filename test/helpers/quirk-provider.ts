/**
 * The real oidc-provider, made to behave the way other providers do (issue 13): each
 * quirk is a small change on the wire — Koa middleware in front of its endpoints, or a
 * patched ID/logout token — never a mock of the protocol. Quirks live in a mutable
 * object, so one provider serves a whole group of tests and each test switches on what
 * it needs (`stack.configure({})` afterwards, so the broker re-reads the metadata).
 *
 * What each quirk imitates, from providers seen in the field:
 *   deadRefreshToken            how a dead refresh token is refused instead of `invalid_grant`:
 *                               an empty 400 (glewlwyd), `invalid_request`, a JSON body without `error`
 *   clientRefused               how a wrong client secret is refused: `invalid_client` in a 401
 *                               without a challenge, or a bare `WWW-Authenticate: Basic` and no body
 *   noIssInAuthorizationResponse  no RFC 9207 `iss` on the redirect, none advertised
 *   lowercaseTokenType          `token_type: "bearer"`
 *   refreshWithoutIdToken       refresh answers carry no new ID token
 *   refreshWithoutRefreshToken  refresh answers carry no refresh token (non-rotating providers)
 *   noRevocationEndpoint        no RFC 7009 endpoint in the metadata
 *   doubleSlashEndpoints        endpoint URLs with `//` after the origin (issuers ending in `/`)
 *   authTimeZero                ID tokens with `auth_time: 0`
 *   logoutToken                 `typ: JWT` (Keycloak before 25 and many JWT libraries), and with it no `exp`
 *                               (the earlier Back-Channel Logout draft glewlwyd follows)
 *   basicCredentialsNotDecoded  the Basic credentials compared as sent, not form-decoded
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { DevIdpOptions } from '../../demo/idp.ts';
import { freePort } from './ports.ts';
import { CLIENT_ID, startStack, type Stack, type StackOptions } from './stack.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

export interface Quirks {
  deadRefreshToken?: 'empty_400' | 'json_without_error' | 'invalid_request';
  clientRefused?: 'invalid_client_without_challenge' | 'bare_basic_challenge';
  noIssInAuthorizationResponse?: boolean;
  lowercaseTokenType?: boolean;
  refreshWithoutIdToken?: boolean;
  refreshWithoutRefreshToken?: boolean;
  noRevocationEndpoint?: boolean;
  doubleSlashEndpoints?: boolean;
  authTimeZero?: boolean;
  logoutToken?: 'typ_jwt' | 'typ_jwt_without_exp';
  basicCredentialsNotDecoded?: boolean;
}

export type SigningAlg = 'RS256' | 'ES256' | 'PS256' | 'EdDSA';

export interface QuirkStack extends Stack {
  /** Switch quirks on and off between tests; call `configure({})` after metadata quirks. */
  quirks: Quirks;
  upstream: TestUpstream;
  /** The provider's private signing keys (the test signs logout tokens with them). */
  keys: Record<SigningAlg, JWK>;
}

export interface QuirkStackOptions extends StackOptions {
  quirks?: Quirks;
  /** The issuer ends in `/` (`http://localhost:<port>/`). */
  trailingSlashIssuer?: boolean;
  /** The ID token (and logout token) signing algorithm of the client. Default RS256. */
  idTokenAlg?: SigningAlg;
}

async function signingKeys(): Promise<Record<SigningAlg, JWK>> {
  const keys = {} as Record<SigningAlg, JWK>;
  // RS256 first: oidc-provider's default for ID tokens and JWT access tokens.
  for (const alg of ['RS256', 'ES256', 'PS256', 'EdDSA'] as const) {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(privateKey);
    keys[alg] = { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
  }
  return keys;
}

type KoaContext = Parameters<Parameters<Provider['use']>[0]>[0];

const ENDPOINT_FIELDS = /(_endpoint|_uri)$/;

/** The Koa middleware and model patches that make the provider behave as `quirks` say. */
function quirkExtension(quirks: Quirks, keys: Record<SigningAlg, JWK>, alg: SigningAlg): (provider: Provider) => void {
  return (provider) => {
    provider.use(async (ctx, next) => {
      if (quirks.doubleSlashEndpoints) ctx.path = ctx.path.replace(/\/{2,}/g, '/');
      if (quirks.basicCredentialsNotDecoded && !(await basicCredentialsMatchAsSent(provider, ctx))) {
        ctx.status = 401;
        ctx.body = { error: 'invalid_client', error_description: 'client authentication failed' };
        return;
      }
      await next();
      const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
      if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') {
        ctx.body = rewriteMetadata(ctx.body as Record<string, unknown>, quirks);
      }
      if (ctx.path === '/token') rewriteTokenAnswer(ctx, String(oidc?.params?.grant_type ?? ''), quirks);
      const location = ctx.response.get('location');
      if (quirks.noIssInAuthorizationResponse && location && /[?&]code=/.test(location)) {
        const url = new URL(location);
        url.searchParams.delete('iss');
        ctx.set('location', url.href);
      }
    });

    const IdToken = provider.IdToken.prototype as unknown as {
      issue(this: { set(key: string, value: unknown): void; payload(): Promise<Record<string, unknown>> }, options?: { use?: string }): Promise<string>;
    };
    const issue = IdToken.issue;
    IdToken.issue = async function (options) {
      if (options?.use === 'idtoken' && quirks.authTimeZero) this.set('auth_time', 0);
      if (options?.use === 'logout' && quirks.logoutToken) {
        // Signed with the provider's own key, as that provider would.
        const key = keys[alg];
        const token = new SignJWT(await this.payload())
          .setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
          .setIssuer(provider.issuer)
          .setAudience(CLIENT_ID)
          .setIssuedAt();
        if (quirks.logoutToken === 'typ_jwt') token.setExpirationTime('2m');
        return token.sign(await importJWK(key, alg));
      }
      return issue.call(this, options);
    };
  };
}

function rewriteMetadata(metadata: Record<string, unknown>, quirks: Quirks): Record<string, unknown> {
  const out = { ...metadata };
  if (quirks.noRevocationEndpoint) delete out.revocation_endpoint;
  if (quirks.noIssInAuthorizationResponse) delete out.authorization_response_iss_parameter_supported;
  if (quirks.doubleSlashEndpoints) {
    const origin = new URL(String(metadata.issuer)).origin;
    for (const [field, value] of Object.entries(out)) {
      if (ENDPOINT_FIELDS.test(field) && typeof value === 'string' && value.startsWith(`${origin}/`) && !value.startsWith(`${origin}//`)) {
        out[field] = `${origin}/${value.slice(origin.length)}`;
      }
    }
  }
  return out;
}

function rewriteTokenAnswer(ctx: KoaContext, grantType: string, quirks: Quirks): void {
  const body = ctx.body as Record<string, unknown> | undefined;
  if (ctx.status === 200 && body && typeof body === 'object') {
    const changed = { ...body };
    if (quirks.lowercaseTokenType && typeof changed.token_type === 'string') changed.token_type = changed.token_type.toLowerCase();
    if (grantType === 'refresh_token' && quirks.refreshWithoutIdToken) delete changed.id_token;
    if (grantType === 'refresh_token' && quirks.refreshWithoutRefreshToken) delete changed.refresh_token;
    ctx.body = changed;
    return;
  }
  const error = body && typeof body === 'object' ? body.error : undefined;
  if (grantType === 'refresh_token' && error === 'invalid_grant' && quirks.deadRefreshToken) {
    if (quirks.deadRefreshToken === 'empty_400') {
      ctx.body = '';
      ctx.remove('content-type');
    } else if (quirks.deadRefreshToken === 'json_without_error') {
      ctx.body = { message: 'refresh token not found' };
    } else {
      ctx.body = { error: 'invalid_request', error_description: 'invalid refresh_token' };
    }
    ctx.status = 400;
  }
  if (error === 'invalid_client' && quirks.clientRefused) {
    ctx.remove('www-authenticate');
    if (quirks.clientRefused === 'bare_basic_challenge') {
      ctx.body = '';
      ctx.remove('content-type');
      ctx.set('www-authenticate', 'Basic realm="token"');
    }
    ctx.status = 401;
  }
}

/**
 * A provider that compares the Basic credentials as sent, without the form-decoding of
 * RFC 6749 §2.3.1: the raw client id and secret must equal the registered ones. When
 * they do, they are re-encoded so that oidc-provider's own (decoding) check passes too.
 */
async function basicCredentialsMatchAsSent(provider: Provider, ctx: KoaContext): Promise<boolean> {
  const value = ctx.req.headers.authorization;
  if (typeof value !== 'string' || !/^basic /i.test(value)) return true;
  const decoded = Buffer.from(value.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return true;
  const [id, secret] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
  const client = await provider.Client.find(id);
  if (!client || client.clientSecret !== secret) return false;
  ctx.req.headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  return true;
}

/**
 * A stack (broker over node:http + the quirky provider + one upstream behind `/api/echo`)
 * with access tokens of 2 s, renewed 1 s after issue, so refresh is reached quickly.
 */
export async function startQuirkStack(options: QuirkStackOptions = {}): Promise<QuirkStack> {
  const quirks: Quirks = { ...options.quirks };
  const keys = await signingKeys();
  const alg = options.idTokenAlg ?? 'RS256';
  const port = options.trailingSlashIssuer ? await freePort() : 0;
  const upstream = await startUpstream();
  const idp: Partial<DevIdpOptions> = {
    accessTokenTtl: 2,
    ...options.idp,
    // Every algorithm's key; RS256 stays first for oidc-provider's defaults.
    jwks: { keys: [keys.RS256, keys.ES256, keys.PS256, keys.EdDSA] },
    extend: quirkExtension(quirks, keys, alg),
    ...(options.trailingSlashIssuer ? { port, issuer: `http://localhost:${port}/` } : {}),
  };
  const stack = await startStack({
    ...options,
    idp,
    client: { ...(alg === 'RS256' ? {} : { id_token_signed_response_alg: alg }), ...options.client },
    env: {
      BFF_ROUTES: JSON.stringify([{ path: '/api/echo', upstream: `${upstream.url}/v1`, auth: 'required' }]),
      TOKEN_REFRESH_SKEW: '1',
      ...options.env,
    },
  });
  const close = stack.close.bind(stack);
  return Object.assign(stack, {
    quirks,
    upstream,
    keys,
    async close() {
      await close();
      await upstream.close();
    },
  });
}

/** A client secret such as `openssl rand -base64 24` gives: with `+`, `/` and `=`. */
export function base64SecretWithSpecials(): string {
  for (;;) {
    const secret = `${randomBytes(22).toString('base64')}`;
    if (secret.includes('+') && secret.includes('/') && secret.endsWith('=')) return secret;
  }
}

/**
 * A provider whose issuer has a path, as Keycloak's realms do (`…/realms/main`): the
 * development provider is served at the root, so its discovery document is also served
 * under `path` and names the issuer with that path. Enough for discovery, which is where
 * an issuer typo shows; nothing after discovery works (its tokens name the root issuer).
 */
export function discoveryUnderPath(path: string): (provider: Provider) => void {
  const document = `${path}/.well-known/openid-configuration`;
  return (provider) => {
    provider.use(async (ctx, next) => {
      const underPath = ctx.path === document;
      if (underPath) ctx.path = '/.well-known/openid-configuration';
      await next();
      if (underPath && ctx.body && typeof ctx.body === 'object') {
        ctx.body = { ...(ctx.body as Record<string, unknown>), issuer: `${new URL(provider.issuer).origin}${path}` };
      }
    });
  };
}
