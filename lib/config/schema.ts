import { z } from 'zod';

/**
 * The environment the broker reads (CONTRACT.md, "Configuration"). Each field's default
 * is documented beside it; `load.ts` turns these raw strings into a typed `Config` and
 * adds the checks that span several variables.
 */
const seconds = (name: string) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number of seconds`)
    .transform(Number)
    .refine((n) => n > 0 && n <= 31_536_000, `${name} must be between 1 and 31536000 seconds`);

const bool = (name: string) =>
  z.enum(['true', 'false'], { error: `${name} must be "true" or "false"` }).transform((v) => v === 'true');

/** Default and bound of REFRESH_GRACE_PERIOD's cap (seconds). */
export const MAX_REFRESH_GRACE_SECONDS = 120;

export const envSchema = z.object({
  /** The public origin the browser uses. Required. */
  APP_BASE_URL: z.string({ error: 'APP_BASE_URL is required: the public origin, e.g. https://app.example.com' }),
  /** The issuer identifier; its discovery document's `issuer` must equal it exactly. Required. */
  OIDC_ISSUER: z.string({ error: 'OIDC_ISSUER is required: the identity provider issuer URL, e.g. https://id.example.com/realms/main' }),
  /** The confidential client's id. Required. */
  OIDC_CLIENT_ID: z.string({ error: 'OIDC_CLIENT_ID is required: the client id registered at the identity provider' }).min(1, 'OIDC_CLIENT_ID must not be empty'),
  /** The client secret. Required unless OIDC_CLIENT_AUTH=private_key_jwt. */
  OIDC_CLIENT_SECRET: z.string().optional(),
  /**
   * Default: client_secret_basic (credentials form-encoded first, RFC 6749 §2.3.1).
   * `client_secret_basic_unencoded` sends them as they are, for providers that do not
   * decode them (a secret holding `+`, `/` or `=` fails there otherwise).
   */
  OIDC_CLIENT_AUTH: z
    .enum(['client_secret_basic', 'client_secret_basic_unencoded', 'client_secret_post', 'private_key_jwt'], {
      error: 'OIDC_CLIENT_AUTH must be one of client_secret_basic, client_secret_basic_unencoded, client_secret_post, private_key_jwt',
    })
    .default('client_secret_basic'),
  /** A private JWK (JSON) for private_key_jwt. */
  OIDC_CLIENT_PRIVATE_KEY: z.string().optional(),
  /** Default: "openid profile email offline_access". Route scopes are added to it. */
  OIDC_SCOPES: z.string().default('openid profile email offline_access'),
  /**
   * Default: "consent" when offline_access is requested, because providers such as
   * oidc-provider only grant offline_access (a refresh token) with prompt=consent.
   * Set it empty (`OIDC_PROMPT=`) to send no prompt (Entra ID and Auth0 issue refresh
   * tokens without it, and would otherwise show a consent screen at every sign-in).
   */
  OIDC_PROMPT: z.string().optional(),
  /** Default: false. `true` allows an http: issuer (tests and local use only). */
  OIDC_ALLOW_INSECURE_HTTP: bool('OIDC_ALLOW_INSECURE_HTTP').default(false),
  /** Comma-separated secrets of 32+ characters; the first seals, all unseal. Required. */
  SESSION_SECRETS: z.string({
    error: 'SESSION_SECRETS is required: one or more comma-separated random secrets of 32+ characters (e.g. `openssl rand -base64 32`)',
  }),
  /** Default: strict. */
  SESSION_SAMESITE: z.enum(['strict', 'lax'], { error: 'SESSION_SAMESITE must be "strict" or "lax"' }).default('strict'),
  /** Default: 86400 (one day without activity ends a session). */
  SESSION_IDLE_TIMEOUT: seconds('SESSION_IDLE_TIMEOUT').default(86_400),
  /** Default: 604800 (seven days after sign-in a session ends, active or not). */
  SESSION_ABSOLUTE_TIMEOUT: seconds('SESSION_ABSOLUTE_TIMEOUT').default(604_800),
  /** Inline JSON route table. Default: the demo routes. */
  BFF_ROUTES: z.string().optional(),
  /** Path to a JSON route table file. */
  BFF_ROUTES_FILE: z.string().optional(),
  /** Default: 60. An access token is refreshed this many seconds before it expires. */
  TOKEN_REFRESH_SKEW: seconds('TOKEN_REFRESH_SKEW').default(60),
  /**
   * Default: 5, at most 60. The lease of the per-session refresh lock in the store,
   * renewed every third of it while a refresh runs: how long a crashed holder blocks the
   * session's refreshes. For tests (proving renewal under a provider slower than two
   * leases within its 10 s timeout); production has no reason to change it.
   */
  REFRESH_LOCK_LEASE: seconds('REFRESH_LOCK_LEASE')
    .refine((n) => n <= 60, 'REFRESH_LOCK_LEASE must be at most 60 seconds: a crashed holder would block refreshes that long')
    .default(5),
  /**
   * Default: 30, at most 120. How long the outcome of a refresh is kept for requests that
   * still carry the consumed refresh token (parallel requests, a cookie in flight). Capped
   * because for that long any stale copy of the cookie, a stolen one included, adopts the
   * live tokens without the provider noticing a reuse.
   */
  REFRESH_GRACE_PERIOD: z
    .string()
    .regex(/^\d+$/, 'REFRESH_GRACE_PERIOD must be a whole number of seconds')
    .transform(Number)
    .refine(
      (n) => n > 0 && n <= MAX_REFRESH_GRACE_SECONDS,
      `REFRESH_GRACE_PERIOD must be between 1 and ${MAX_REFRESH_GRACE_SECONDS} seconds: for that long a stale or stolen copy of the cookie adopts the live tokens unnoticed`,
    )
    .default(30),
  /**
   * Default: 7168. The most bytes the session cookie family may take in the browser's
   * `Cookie` header (names, `=` and `; ` included). A session that would not fit is
   * refused at sign-in with a clear error instead of being written: nginx refuses a
   * header line above 8 KB by default (`large_client_header_buffers 4 8k`) and Node
   * refuses all headers together above 16 KiB (`--max-http-header-size`).
   */
  SESSION_COOKIE_MAX_BYTES: z
    .string()
    .regex(/^\d+$/, 'SESSION_COOKIE_MAX_BYTES must be a whole number of bytes')
    .transform(Number)
    .refine((n) => n >= 1024 && n <= 32_768, 'SESSION_COOKIE_MAX_BYTES must be between 1024 and 32768')
    .default(7168),
  /**
   * Default: log. What the broker does when one session shows two holders (a spent
   * refresh token presented after its successor was used) or changes network and
   * browser at once: `log` records a security event and a metric; `end` also ends the
   * session on every instance and revokes its refresh token (RFC 9700 §4.14.2).
   */
  SESSION_ANOMALY_POLICY: z.enum(['log', 'end'], { error: 'SESSION_ANOMALY_POLICY must be "log" or "end"' }).default('log'),
  /**
   * Default: unset. Path of an offline IP database (MMDB: GeoLite2-ASN / -Country, DB-IP,
   * IPinfo) for stolen-session detection: with it, a session's network is its autonomous
   * system and country rather than its /24, so a move within one provider is no change.
   */
  SESSION_GEOIP_DB: z.string().optional(),
  /**
   * Default: 30. Seconds of clock difference tolerated with the provider when checking
   * ID tokens and logout tokens (`iat`, `exp`, `nbf`).
   */
  OIDC_CLOCK_TOLERANCE: z
    .string()
    .regex(/^\d+$/, 'OIDC_CLOCK_TOLERANCE must be a whole number of seconds')
    .transform(Number)
    .refine((n) => n <= 300, 'OIDC_CLOCK_TOLERANCE must be between 0 and 300 seconds')
    .default(30),
  /** Default: 300. How old (by `iat`) a back-channel logout token may be when it arrives. */
  OIDC_LOGOUT_TOKEN_MAX_AGE: seconds('OIDC_LOGOUT_TOKEN_MAX_AGE').default(300),
  /**
   * Default: false. `true` allows `http:` upstreams on non-loopback hosts for routes
   * that attach a token (the token would cross the network in the clear).
   */
  BFF_ALLOW_INSECURE_UPSTREAM: bool('BFF_ALLOW_INSECURE_UPSTREAM').default(false),
  /** `redis://` or `rediss://` URL of a Redis or Valkey server shared by every instance. */
  REDIS_URL: z.string().optional(),
  /** Comma-separated `host:port` seed nodes of a Redis Cluster, instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: z.string().optional(),
  /** Default: "cloakroom:". Prefix of every key the broker writes to Redis. */
  REDIS_KEY_PREFIX: z.string().default('cloakroom:'),
  /** Default: 600. Requests per minute per session on /api/; 0 turns the limit off. */
  RATE_LIMIT_API: z
    .string()
    .regex(/^\d+$/, 'RATE_LIMIT_API must be a whole number of requests per minute (0 turns it off)')
    .transform(Number)
    .default(600),
  /** Default: 60. Requests per minute per client address on /auth/login and /auth/callback; 0 turns it off. */
  RATE_LIMIT_AUTH: z
    .string()
    .regex(/^\d+$/, 'RATE_LIMIT_AUTH must be a whole number of requests per minute (0 turns it off)')
    .transform(Number)
    .default(60),
  /**
   * Default: 0. How many reverse proxies in front of the broker append to
   * X-Forwarded-For; the client address is taken that many entries from the right.
   * 0: the socket's peer address. Used for rate limits and anomaly signals only.
   */
  TRUSTED_PROXY_HOPS: z
    .string()
    .regex(/^\d+$/, 'TRUSTED_PROXY_HOPS must be a whole number of proxies (0: none)')
    .transform(Number)
    .refine((n) => n <= 10, 'TRUSTED_PROXY_HOPS must be between 0 and 10')
    .default(0),
  /**
   * Default: info. `debug` | `info` | `warn` | `error`. Read by lib/log.ts; validated here so
   * that a misspelt level is refused at start instead of silently logging at `info`.
   */
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error'], { error: 'LOG_LEVEL must be one of debug, info, warn, error' }).default('info'),
  /**
   * Default: cookie. Where a session lives. `cookie`: sealed in the
   * session cookie itself. `server`: the cookie carries only a sealed random handle, and
   * the session with its tokens lives in the store, sealed.
   */
  SESSION_STORAGE: z.enum(['cookie', 'server'], { error: 'SESSION_STORAGE must be "cookie" or "server"' }).default('cookie'),
  /**
   * Default: client_id. What RP-initiated logout tells the provider about the session:
   * `client_id` sends `client_id` (no ID token in the browser-visible logout URL);
   * `id_token` sends `id_token_hint`, for providers that require it (e.g. Okta), and
   * keeps the ID token sealed in the store for that purpose, never in the cookie.
   */
  OIDC_END_SESSION_HINT: z.enum(['client_id', 'id_token'], { error: 'OIDC_END_SESSION_HINT must be "client_id" or "id_token"' }).default('client_id'),
  /**
   * Bearer token of the `/ops/` endpoints (`Authorization: Bearer <OPS_TOKEN>`), 32+
   * random characters (the SESSION_SECRETS entropy floor). Unset (default): every `/ops/`
   * path answers 404, as if it did not exist.
   */
  OPS_TOKEN: z.string().optional(),
  /** A directory holding the web app's static build (it must contain index.html), served on the broker's origin. */
  BFF_FRONTEND_DIR: z.string().optional(),
  /** Instead of BFF_FRONTEND_DIR: the web app's own server or dev server (e.g. http://localhost:5173), proxied with its WebSockets. */
  BFF_FRONTEND_UPSTREAM: z.string().optional(),
  /** Default: none. `required`: an HTML navigation to the frontend without a session is sent to /auth/login?returnTo=<path>. */
  BFF_FRONTEND_AUTH: z.enum(['none', 'required'], { error: 'BFF_FRONTEND_AUTH must be "none" or "required"' }).default('none'),
  /**
   * Directives added to the frontend pages' Content-Security-Policy (lib/frontend/policy.ts),
   * e.g. `connect-src https://sentry.example.com; img-src https://cdn.example.com`: each
   * directive's sources are added to the default one's (a new directive is added as is).
   */
  BFF_FRONTEND_CSP: z.string().optional(),
  /** Default: 3000. */
  PORT: z
    .string()
    .regex(/^\d+$/, 'PORT must be a port number')
    .transform(Number)
    .refine((n) => n > 0 && n < 65_536, 'PORT must be between 1 and 65535')
    .default(3000),
});

export type RawEnv = z.output<typeof envSchema>;

/** Variables with the broker's prefixes that it does not know are most likely typos. */
export const KNOWN_PREFIXES = ['OIDC_', 'SESSION_', 'BFF_', 'TOKEN_', 'REFRESH_', 'REDIS_', 'RATE_LIMIT_', 'OPS_'] as const;

/**
 * Variables the broker reads outside its own prefixes. `LOG_` is not a prefix of ours
 * (other tools read LOG_FORMAT, LOG_DIR, …), so a name is taken for a misspelling of one
 * of these only when it is within two edits of it (LOG_LEVLE, LOGLEVEL, LOG_LVL).
 */
export const UNPREFIXED_VARIABLES = ['LOG_LEVEL'] as const;
