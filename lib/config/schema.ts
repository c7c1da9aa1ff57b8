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

export const envSchema = z.object({
  /** The public origin the browser uses. Required. */
  APP_BASE_URL: z.string({ error: 'APP_BASE_URL is required: the public origin, e.g. https://app.example.com' }),
  /** The issuer identifier; its discovery document's `issuer` must equal it exactly. Required. */
  OIDC_ISSUER: z.string({ error: 'OIDC_ISSUER is required: the identity provider issuer URL, e.g. https://id.example.com/realms/main' }),
  /** The confidential client's id. Required. */
  OIDC_CLIENT_ID: z.string({ error: 'OIDC_CLIENT_ID is required: the client id registered at the identity provider' }).min(1, 'OIDC_CLIENT_ID must not be empty'),
  /** The client secret. Required unless OIDC_CLIENT_AUTH=private_key_jwt. */
  OIDC_CLIENT_SECRET: z.string().optional(),
  /** Default: client_secret_basic. */
  OIDC_CLIENT_AUTH: z
    .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'], {
      error: 'OIDC_CLIENT_AUTH must be one of client_secret_basic, client_secret_post, private_key_jwt',
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
   * Default: 30. How long the outcome of a refresh is kept for requests that still carry
   * the consumed refresh token (parallel requests, a cookie in flight).
   */
  REFRESH_GRACE_PERIOD: seconds('REFRESH_GRACE_PERIOD').default(30),
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
export const KNOWN_PREFIXES = ['OIDC_', 'SESSION_', 'BFF_'] as const;
