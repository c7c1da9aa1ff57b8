/**
 * The development identity provider: a real oidc-provider 9 instance on node:http, with
 * its own small sign-in page and automatic consent. `npm run demo` runs it next to the
 * broker, and the test suites use it as the broker's real protocol peer — so protocol
 * behaviour (refresh-token rotation and reuse detection, resource indicators, back-channel
 * logout) is oidc-provider's own, not a mock's idea of it.
 *
 * Development only: in-memory storage, users with published passwords, consent granted
 * without asking, and outbound calls to loopback allowed.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import Provider, { errors } from 'oidc-provider';
import type {
  Adapter,
  AdapterPayload,
  ClientMetadata,
  Configuration,
  KoaContextWithOIDC,
} from 'oidc-provider';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
// oidc-provider's own keystore initialiser (no public API rotates keys at run time; see replaceKeystore).
// @ts-expect-error -- an internal module without type declarations
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';
import { listen } from './listen.ts';

export interface DevUser {
  sub: string;
  username: string;
  password: string;
  claims: Record<string, unknown>;
}

export interface DevClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  backchannel_logout_uri?: string;
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  jwks?: { keys: object[] };
  /** The client's keys by URL (private_key_jwt): oidc-provider fetches and caches them (60 s at least). */
  jwks_uri?: string;
  /** Default RS256 (oidc-provider's). The provider's `jwks` must hold a key for it. */
  id_token_signed_response_alg?: ClientMetadata['id_token_signed_response_alg'];
}

export interface DevIdpOptions {
  /** 0 = ephemeral. */
  port: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default `http://localhost:${actualPort}`. Must not have a path. */
  issuer?: string;
  clients: DevClient[];
  /** Resource indicator URL → the scopes it accepts; its access tokens are JWTs with `aud` = the URL. */
  resources?: Record<string, { scope: string; accessTokenTtl?: number }>;
  /** Seconds; default 60, for JWT and opaque access tokens alike. */
  accessTokenTtl?: number;
  /** Default true: rotate on every use; reusing a consumed refresh token revokes the grant. */
  rotateRefreshTokens?: boolean;
  /** Default true (pushed authorization requests enabled). */
  par?: boolean;
  /** Private signing JWKs; when absent, an RS256 and an ES256 key are generated in memory. */
  jwks?: { keys: object[] };
  /** Default DEMO_USERS. */
  users?: DevUser[];
  /** Default true: the sign-in page lists the demo users and their passwords. */
  showDemoHint?: boolean;
  /**
   * Default false. When true, a token request without `resource` gets a JWT for the
   * resource granted at authorization (oidc-provider's `useGrantedResource`) instead of
   * the opaque userinfo token — and fails with invalid_target when several were granted.
   */
  useGrantedResource?: boolean;
  /**
   * Default false. When true, the ID token of a code flow carries only `sub` and the
   * protocol claims; `name`, `email` and the other scope claims come from UserInfo alone,
   * as OpenID Connect Core §5.4 describes (oidc-provider's `conformIdTokenClaims`).
   */
  claimsOnlyAtUserInfo?: boolean;
  /**
   * True: RFC 9449 DPoP at the token endpoint (`features.dPoP`), with server nonces
   * required so that clients exercise the `use_dpop_nonce` retry (RFC 9449 §8). False:
   * DPoP off (not advertised). Default: oidc-provider's own default.
   */
  dpop?: boolean;
  /**
   * Called with the provider before it starts serving, so that tests can make it behave
   * like other providers (Koa middleware via `provider.use`, patched models). Koa composes
   * its middleware when serving starts: `provider.use` afterwards would never run.
   */
  extend?: (provider: Provider) => void;
  /**
   * Token exchange (RFC 8693, `registerGrantType`): the audiences a client may exchange
   * its access token for, each with the scopes it may carry. Unset: the grant is not
   * offered (and not in `grant_types_supported`).
   */
  exchangeAudiences?: Record<string, { scope: string; accessTokenTtl?: number }>;
  /**
   * Default false. `POST /dev/rotate-signing-keys` adds a new signing key first (it signs
   * from then on) and keeps the previous ones published for verification. Demo only.
   */
  rotationEndpoint?: boolean;
  /** Called with the new private key set after a rotation (the demo persists it). */
  onKeysRotated?: (jwks: { keys: object[] }) => void | Promise<void>;
}

export interface DevTokenRequest {
  grant_type: string;
  resource?: string | string[];
  clientAuth?: string;
  /** Whether the provider answered with tokens. */
  ok: boolean;
  /** The OAuth error code when it did not. */
  error?: string;
}

export interface DevIdpStats {
  refreshGrants: number;
  authorizationCodeGrants: number;
  grantsRevoked: number;
  backchannelLogouts: number;
  backchannelLogoutErrors: number;
  parRequests: number;
  /** RFC 8693 exchanges that issued a token. */
  exchangeGrants: number;
  /** GET requests to the provider's JWKS endpoint (what a flood of unknown `kid`s would cost it). */
  jwksFetches: number;
  tokenRequests: DevTokenRequest[];
}

export interface DevIdp {
  issuer: string;
  port: number;
  provider: Provider;
  stats: DevIdpStats;
  resetStats(): void;
  /**
   * Key rotation: a new RS256 signing key goes first (ID tokens, logout tokens and JWT
   * access tokens are signed with it from now on); the previous keys stay published so
   * that what they signed still verifies. Returns the new key's `kid`.
   */
  rotateSigningKeys(): Promise<string>;
  /** The current private signing keys, newest first (tests sign logout tokens with them). */
  signingKeys(): { keys: object[] };
  close(): Promise<void>;
}

function groupNames(count: number): string[] {
  const teams = ['engineering-platform', 'engineering-payments', 'design-systems', 'data-warehouse', 'security-operations'];
  return Array.from({ length: count }, (_, i) => `group-${String(i + 1).padStart(3, '0')}-${teams[i % teams.length]}`);
}

export const DEMO_USERS: DevUser[] = [
  {
    sub: 'user-alice',
    username: 'alice',
    password: 'alice-password',
    claims: { name: 'Alice Example', preferred_username: 'alice', email: 'alice@example.com', email_verified: true },
  },
  {
    sub: 'user-bob',
    username: 'bob',
    password: 'bob-password',
    claims: { name: 'Bob Example', preferred_username: 'bob', email: 'bob@example.com', email_verified: false },
  },
  {
    // Enough claims to push a session past one 4 KB cookie (cookie chunking tests).
    sub: 'user-carol',
    username: 'carol',
    password: 'carol-password',
    claims: {
      name: 'Carol Example',
      preferred_username: 'carol',
      email: 'carol@example.com',
      email_verified: true,
      groups: groupNames(150),
    },
  },
];

/* ------------------------------------------------------------------------------------ */
/* Keys                                                                                  */

async function generateSigningKey(alg: string): Promise<object> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

async function generateSigningJwks(): Promise<{ keys: object[] }> {
  // RS256 first: it is oidc-provider's default ID token and JWT access token algorithm.
  return { keys: [await generateSigningKey('RS256'), await generateSigningKey('ES256')] };
}

/** How many keys a rotation keeps (newest first): the new one, and those before it for what they signed. */
const KEYS_KEPT = 4;

/**
 * Reads the demo's signing keys from `file`, or generates and stores them (mode 0600),
 * so a restarted demo provider still validates the tokens and ID tokens it issued before.
 */
export async function loadOrCreateDemoJwks(file: string): Promise<{ keys: object[] }> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { keys?: unknown };
    if (Array.isArray(parsed.keys) && parsed.keys.length > 0) return { keys: parsed.keys as object[] };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the demo signing keys in ${file}; delete the file to generate new ones`, { cause: error });
    }
  }
  const jwks = await generateSigningJwks();
  await mkdir(dirname(file), { recursive: true });
  // Written aside then renamed, so a crash never leaves a half-written key file behind.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600); // the mode above is filtered by the umask
  await rename(temporary, file);
  return jwks;
}

/* ------------------------------------------------------------------------------------ */
/* Storage                                                                               */

/**
 * An in-memory store without a size cap. oidc-provider's own memory adapter is an LRU of
 * 1,000 entries shared by all models, so a benchmark or a long test run would silently
 * evict live sessions, grants and refresh tokens. This one expires entries by time only.
 */
class DevStore {
  readonly entries = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  /** grantId → keys of the tokens issued under it (revocation by grant). */
  readonly grants = new Map<string, Set<string>>();
  readonly sessionUids = new Map<string, string>();
  readonly userCodes = new Map<string, string>();
  #writes = 0;

  get(key: string): AdapterPayload | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  set(key: string, payload: AdapterPayload, expiresIn: number | undefined): void {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY;
    this.entries.set(key, { payload, expiresAt });
    if (payload.grantId) {
      let members = this.grants.get(payload.grantId);
      if (!members) this.grants.set(payload.grantId, (members = new Set()));
      members.add(key);
    }
    if (++this.#writes % 1000 === 0) this.sweep();
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (entry?.payload.grantId) {
      const members = this.grants.get(entry.payload.grantId);
      members?.delete(key);
      if (members?.size === 0) this.grants.delete(entry.payload.grantId);
    }
  }

  /** Drops expired entries now and then, so a long run does not grow without bound. */
  sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.delete(key);
    for (const [uid, id] of this.sessionUids) if (!this.entries.has(`Session:${id}`)) this.sessionUids.delete(uid);
    for (const [code, id] of this.userCodes) if (!this.entries.has(`DeviceCode:${id}`)) this.userCodes.delete(code);
  }
}

function adapterFactory(store: DevStore, clockTolerance: number): (model: string) => Adapter {
  return (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        store.set(key(id), payload, typeof expiresIn === 'number' ? expiresIn + clockTolerance : undefined);
        if (model === 'Session' && typeof payload.uid === 'string') store.sessionUids.set(payload.uid, id);
        if (typeof payload.userCode === 'string') store.userCodes.set(payload.userCode, id);
      },
      async find(id) {
        return store.get(key(id));
      },
      async findByUid(uid) {
        const id = store.sessionUids.get(uid);
        return id === undefined ? undefined : store.get(key(id));
      },
      async findByUserCode(userCode) {
        const id = store.userCodes.get(userCode);
        return id === undefined ? undefined : store.get(key(id));
      },
      async consume(id) {
        const payload = store.get(key(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        // The index spans every model, so the first model's call revokes the whole grant.
        for (const member of [...(store.grants.get(grantId) ?? [])]) store.delete(member);
        store.grants.delete(grantId);
      },
    };
  };
}

/* ------------------------------------------------------------------------------------ */
/* Pages                                                                                 */

function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f4f5f7;color:#1d2330;
  font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{width:min(22rem,calc(100vw - 2rem));background:#fff;border-radius:10px;padding:1.75rem;
  box-shadow:0 1px 3px rgba(0,0,0,.08),0 8px 24px rgba(0,0,0,.06)}
h1{margin:0 0 .25rem;font-size:1.35rem}
.sub{margin:0 0 1.25rem;color:#5b6475}
label{display:block;margin:0 0 .9rem;font-weight:600;font-size:.9rem}
input{display:block;width:100%;margin-top:.3rem;padding:.55rem .65rem;font:inherit;border:1px solid #c9cfd9;border-radius:6px}
input:focus{outline:2px solid #3b6fe0;outline-offset:0;border-color:#3b6fe0}
button{width:100%;padding:.6rem;font:inherit;font-weight:600;color:#fff;background:#3b6fe0;border:0;border-radius:6px;cursor:pointer}
button:hover{background:#2c5bc4}
button.secondary{margin-top:.5rem;color:#1d2330;background:#e6e9ef}
.error{margin:0 0 1rem;padding:.55rem .7rem;color:#8a1c1c;background:#fdecec;border-radius:6px}
.cancel{display:block;margin-top:.9rem;text-align:center;color:#5b6475;font-size:.9rem}
.hint{margin:1.25rem 0 0;padding-top:1rem;border-top:1px solid #eceef2;color:#5b6475;font-size:.85rem}
.hint code{font-size:.85rem}
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Cloakroom dev IdP</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

function loginPage(options: {
  uid: string;
  clientName: string;
  username?: string;
  error?: string;
  users: DevUser[];
  showDemoHint: boolean;
}): string {
  const action = `/interaction/${encodeURIComponent(options.uid)}`;
  const hint = options.showDemoHint
    ? `<p class="hint">Demo users: ${options.users
        .map((u) => `<code>${escapeHtml(u.username)}</code> / <code>${escapeHtml(u.password)}</code>`)
        .join(', ')}</p>`
    : '';
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p class="sub">to continue to <strong>${escapeHtml(options.clientName)}</strong></p>
${options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
<label>Username<input name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required${options.username ? '' : ' autofocus'} value="${escapeHtml(options.username ?? '')}"></label>
<label>Password<input name="password" type="password" autocomplete="current-password" required${options.username ? ' autofocus' : ''}></label>
<button type="submit">Sign in</button>
</form>
<a class="cancel" href="${escapeHtml(`${action}/abort`)}">Cancel</a>
${hint}`,
  );
}

// The interaction pages are served outside Koa, so they set their own protective headers.
// No form-action directive: Chromium applies it to the redirects after the POST too, and
// those lead to the client on another origin.
function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(html);
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/* ------------------------------------------------------------------------------------ */
/* The provider                                                                          */

function newStats(): DevIdpStats {
  return {
    refreshGrants: 0,
    authorizationCodeGrants: 0,
    grantsRevoked: 0,
    backchannelLogouts: 0,
    backchannelLogoutErrors: 0,
    parRequests: 0,
    exchangeGrants: 0,
    jwksFetches: 0,
    tokenRequests: [],
  };
}

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

function errorCode(error: unknown): string {
  const e = error as { error?: unknown; message?: unknown };
  return typeof e?.error === 'string' ? e.error : 'server_error';
}

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const users = options.users ?? DEMO_USERS;
  const showDemoHint = options.showDemoHint ?? true;
  const accessTokenTtl = options.accessTokenTtl ?? 60;
  const resources = options.resources ?? {};
  let jwks = options.jwks ?? (await generateSigningJwks());
  const stats = newStats();

  // Listen first: the default issuer names the port, and port 0 is only known afterwards.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503).end();
  };
  const server = createServer((req, res) => handler(req, res));
  server.keepAliveTimeout = 5_000;
  const port = await listen(server, options.port, host);
  const issuer = options.issuer ?? `http://localhost:${port}`;
  if (new URL(issuer).pathname !== '/') {
    server.close();
    throw new Error(`the development provider must be served at the root of its origin, not ${issuer}`);
  }

  const store = new DevStore();
  const clockTolerance = 15;
  const findUser = (sub: string) => users.find((u) => u.sub === sub);

  const clients: ClientMetadata[] = options.clients.map((c) => ({
    client_id: c.client_id,
    ...(c.client_secret !== undefined ? { client_secret: c.client_secret } : {}),
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    ...(c.backchannel_logout_uri
      ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true }
      : {}),
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    ...(c.jwks ? { jwks: c.jwks as ClientMetadata['jwks'] } : {}),
    ...(c.jwks_uri ? { jwks_uri: c.jwks_uri } : {}),
    ...(c.id_token_signed_response_alg ? { id_token_signed_response_alg: c.id_token_signed_response_alg } : {}),
    grant_types: ['authorization_code', 'refresh_token', ...(options.exchangeAudiences ? [TOKEN_EXCHANGE_GRANT] : [])],
    response_types: ['code'],
  }));

  const configuration: Configuration = {
    adapter: adapterFactory(store, clockTolerance),
    clients,
    jwks: jwks as Configuration['jwks'],
    clockTolerance,
    // Random per start: nothing signed by a previous run (or another instance) is accepted.
    cookies: {
      names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
      keys: [randomBytes(32).toString('base64url')],
    },
    claims: {
      openid: ['sub'],
      // `groups` rides on `profile` so the broker's default scopes bring carol's 150 groups
      // into the ID token; the `groups` scope asks for it alone.
      profile: ['name', 'preferred_username', 'groups'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Claims of the granted scopes go into the ID token too, not only to userinfo.
    conformIdTokenClaims: options.claimsOnlyAtUserInfo ?? false,
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    pkce: { required: () => true },
    rotateRefreshToken: options.rotateRefreshTokens ?? true,
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    // An exchanged token says so (`gty`), so the demo API and page can show how it was obtained.
    extraTokenClaims: async (_ctx, token) => ('gty' in token && token.gty === 'token_exchange' ? { gty: 'token-exchange' } : undefined),
    async findAccount(_ctx, sub) {
      const user = findUser(sub);
      if (!user) return undefined;
      // oidc-provider keeps only the claims that the granted scopes and claims allow.
      return { accountId: sub, claims: () => ({ ...user.claims, sub }) };
    },
    features: {
      devInteractions: { enabled: false },
      revocation: {
        enabled: true,
        // As the default policy, without its "you SHOULD change this" console notice.
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId !== client.clientId) {
            if (client.clientAuthMethod === 'none') return false;
            throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          }
          return true;
        },
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) =>
          !(client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client?.clientId),
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          // oidc-provider's form (id "op.logoutForm") carries the xsrf token; these buttons submit it.
          ctx.body = page(
            'Sign out',
            `<h1>Sign out?</h1>
<p class="sub">Sign out of the development identity provider at ${escapeHtml(ctx.host)}.</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>`,
          );
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<h1>Signed out</h1><p class="sub">You have been signed out.</p>');
        },
      },
      backchannelLogout: { enabled: true },
      // DPoP (issue 12): proofs at the token endpoint bind access tokens (`cnf.jkt`);
      // `requireNonce` makes every proof carry a server nonce (RFC 9449 §8).
      ...(options.dpop === true ? { dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true } } : {}),
      ...(options.dpop === false ? { dPoP: { enabled: false } } : {}),
      pushedAuthorizationRequests: { enabled: options.par ?? true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        // Off by default: a token request without `resource` then gets the opaque token
        // for userinfo, even when the authorization request named several resources.
        useGrantedResource: async () => options.useGrantedResource ?? false,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          const resource = resources[resourceIndicator];
          if (!resource) throw new errors.InvalidTarget();
          return {
            scope: resource.scope,
            audience: resourceIndicator,
            accessTokenTTL: resource.accessTokenTtl ?? accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    // The broker calls the provider from its server; no browser calls it cross-origin.
    clientBasedCORS: () => false,
    // Back-channel logout tokens go to the broker on loopback, which oidc-provider's
    // anti-SSRF dispatcher refuses. Loopback targets get fetch's ordinary dispatcher here;
    // everything else keeps the protected one. Development provider only.
    fetch: (url, init) => {
      const target = new URL(url instanceof Request ? url.url : url);
      if (isLoopbackHost(target.hostname)) {
        const unguarded: RequestInit & { dispatcher?: unknown } = { ...init };
        delete unguarded.dispatcher;
        return globalThis.fetch(url, unguarded);
      }
      return globalThis.fetch(url, init);
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page(
        'Error',
        `<h1>Something went wrong</h1>${Object.entries(out)
          .map(([key, value]) => `<p class="sub"><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</p>`)
          .join('')}`,
      );
    },
  };

  const provider = new Provider(issuer, configuration);

  // Every ID token carries `sid`, which oidc-provider otherwise adds only for clients
  // registered for back-channel logout with session_required. The broker keys sessions
  // by it; a real provider (Keycloak, Auth0, Okta) sends it regardless.
  provider.Client.prototype.includeSid = () => true;

  const recordTokenRequest = (ctx: KoaContextWithOIDC, error?: unknown) => {
    const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
    const entry: DevTokenRequest = {
      grant_type: typeof params.grant_type === 'string' ? params.grant_type : '',
      clientAuth: ctx.oidc?.client?.clientAuthMethod,
      ok: error === undefined,
    };
    if (params.resource !== undefined) entry.resource = params.resource as string | string[];
    if (error !== undefined) entry.error = errorCode(error);
    stats.tokenRequests.push(entry);
  };
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    recordTokenRequest(ctx);
    const grantType = ctx.oidc.params?.grant_type;
    if (grantType === 'refresh_token') stats.refreshGrants += 1;
    if (grantType === 'authorization_code') stats.authorizationCodeGrants += 1;
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: unknown) => recordTokenRequest(ctx, error));
  provider.on('grant.revoked', () => {
    stats.grantsRevoked += 1;
  });
  provider.on('backchannel.success', () => {
    stats.backchannelLogouts += 1;
  });
  provider.on('backchannel.error', (_ctx: unknown, error: Error, client: { clientId: string }) => {
    stats.backchannelLogoutErrors += 1;
    console.error(`[dev-idp] back-channel logout to client ${client.clientId} failed: ${error.message}`);
  });
  provider.on('pushed_authorization_request.success', () => {
    stats.parRequests += 1;
  });
  provider.on('server_error', (_ctx: unknown, error: Error) => {
    console.error('[dev-idp] server_error:', error);
  });

  const interaction = async (req: IncomingMessage, res: ServerResponse, uid: string, action: string) => {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      // No (or an expired) interaction cookie: a stale tab, or cookies blocked.
      sendHtml(res, 400, page('Sign-in expired', '<h1>This sign-in has expired</h1><p class="sub">Go back to the application and start again.</p>'));
      return;
    }
    if (details.uid !== uid) {
      sendHtml(res, 400, page('Sign-in expired', '<h1>This sign-in is no longer current</h1><p class="sub">Go back to the application and start again.</p>'));
      return;
    }
    const clientId = String(details.params.client_id);

    if (action === 'abort') {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
      return;
    }

    if (details.prompt.name === 'login') {
      if (req.method === 'GET') {
        sendHtml(res, 200, loginPage({ uid, clientName: clientId, users, showDemoHint }));
        return;
      }
      const form = await readForm(req);
      const username = form.get('username') ?? '';
      const password = form.get('password') ?? '';
      const user = users.find((u) => u.username === username && u.password === password);
      if (!user) {
        sendHtml(res, 401, loginPage({ uid, clientName: clientId, username, error: 'Invalid username or password.', users, showDemoHint }));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
      return;
    }

    if (details.prompt.name === 'consent') {
      // Development provider: grant whatever was asked, without a consent screen.
      const accountId = details.session?.accountId;
      if (!accountId) throw new Error('consent prompt without a signed-in account');
      const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
      const grant = existing ?? new provider.Grant({ accountId, clientId });
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }

    sendHtml(res, 501, page('Not supported', `<h1>Unsupported prompt</h1><p class="sub">${escapeHtml(details.prompt.name)}</p>`));
  };

  if (options.exchangeAudiences) registerTokenExchange(provider, options.exchangeAudiences, accessTokenTtl, stats);

  const rotateSigningKeys = async () => {
    const key = (await generateSigningKey('RS256')) as { kid: string };
    jwks = { keys: [key, ...jwks.keys].slice(0, KEYS_KEPT) };
    replaceKeystore(provider, jwks);
    await options.onKeysRotated?.(jwks);
    return key.kid;
  };

  options.extend?.(provider);
  const callback = provider.callback();
  handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/jwks' && req.method === 'GET') stats.jwksFetches += 1;
    if (path === '/dev/rotate-signing-keys' && options.rotationEndpoint) {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' }).end();
        return;
      }
      rotateSigningKeys().then(
        (kid) => {
          console.log(`[dev-idp] signing keys rotated: ${kid} signs now, ${jwks.keys.length - 1} older key(s) still published`);
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ kid }));
        },
        (error: unknown) => {
          console.error('[dev-idp] key rotation failed:', error);
          res.writeHead(500).end();
        },
      );
      return;
    }
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(abort))?$/.exec(path);
    if (!match) {
      callback(req, res);
      return;
    }
    const [, uid, action = req.method === 'POST' ? 'submit' : 'show'] = match;
    if (!(req.method === 'GET' || (req.method === 'POST' && action === 'submit'))) {
      res.writeHead(405, { allow: action === 'abort' ? 'GET' : 'GET, POST' }).end();
      return;
    }
    interaction(req, res, uid, action).catch((error: unknown) => {
      const status = (error as { status?: number }).status;
      if (status !== 413) console.error('[dev-idp] interaction failed:', error);
      if (!res.headersSent) sendHtml(res, status ?? 500, page('Error', '<h1>Something went wrong</h1>'));
      else res.destroy();
    });
  };

  return {
    issuer,
    port,
    provider,
    stats,
    resetStats() {
      // In place: callers may hold a reference to `stats`.
      Object.assign(stats, newStats(), { tokenRequests: stats.tokenRequests });
      stats.tokenRequests.length = 0;
    },
    rotateSigningKeys,
    signingKeys: () => structuredClone(jwks),
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

/* ------------------------------------------------------------------------------------ */
/* Key rotation and token exchange                                                       */

/**
 * oidc-provider reads `jwks` once, at construction; it has no public call to change its
 * keys while it runs. Its own keystore initialiser is called again with the new set, so
 * that signing (ID tokens, logout tokens, JWT access tokens) and the published
 * `jwks_uri` both switch at once — what a real provider's rotation looks like from
 * outside. Development provider only: this reaches into the package's internals.
 */
function replaceKeystore(provider: Provider, jwks: { keys: object[] }): void {
  initializeKeystore.call(provider, structuredClone(jwks));
}

const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * RFC 8693 token exchange as a custom grant (`registerGrantType`): the subject token must
 * be a live access token this provider issued to the calling client (the opaque token of
 * the sign-in, found in the provider's store, so a revoked grant refuses it); the new
 * token is a JWT for the requested `audience` carrying only requested scopes that the
 * audience allows. Impersonation only (no `actor_token`): the user is the subject, the
 * broker the client.
 */
function registerTokenExchange(
  provider: Provider,
  audiences: Record<string, { scope: string; accessTokenTtl?: number }>,
  defaultTtl: number,
  stats: DevIdpStats,
): void {
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx: KoaContextWithOIDC) => {
      const params = ctx.oidc.params as Record<string, string | undefined>;
      const client = ctx.oidc.client;
      if (!client) throw new errors.InvalidClient('client authentication required');
      if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('subject_token_type must be an access token');
      if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest('only access tokens are issued');
      if (params.actor_token) throw new errors.InvalidRequest('delegation (actor_token) is not supported');
      const subject = params.subject_token ? await provider.AccessToken.find(params.subject_token) : undefined;
      if (!subject || subject.isExpired || subject.clientId !== client.clientId || !subject.accountId) {
        throw new errors.InvalidGrant('subject token invalid, expired or issued to another client');
      }
      const grant = subject.grantId ? await provider.Grant.find(subject.grantId) : undefined;
      if (!grant) throw new errors.InvalidGrant('the grant of the subject token is gone');
      const audience = params.audience;
      const allowed = audience ? audiences[audience] : undefined;
      if (!audience || !allowed) throw new errors.InvalidTarget('audience not allowed for token exchange');
      const allowedScopes = new Set(allowed.scope.split(' '));
      const requested = (params.scope ?? '').split(' ').filter(Boolean);
      if (requested.length === 0 || requested.some((scope) => !allowedScopes.has(scope))) throw new errors.InvalidScope('requested scope is not allowed for this audience', params.scope ?? '');
      const ttl = allowed.accessTokenTtl ?? defaultTtl;
      const resourceServer = new provider.ResourceServer(audience, {
        audience,
        scope: allowed.scope,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      });
      const token = new provider.AccessToken({
        accountId: subject.accountId,
        client,
        grantId: subject.grantId,
        gty: 'token_exchange',
        scope: requested.join(' '),
        resourceServer,
        expiresIn: ttl,
      });
      const value = await token.save();
      stats.exchangeGrants += 1;
      ctx.body = {
        access_token: value,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: ttl,
        scope: token.scope,
      };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'actor_token', 'actor_token_type', 'resource'],
  );
}
