import { readFileSync } from 'node:fs';
import { ipDatabase } from '../ops/ip-database.ts';
import { envSchema, KNOWN_PREFIXES, UNPREFIXED_VARIABLES, type RawEnv } from './schema.ts';
import { DEMO_ROUTES } from './demo-routes.ts';
import { passwordId, secretWeakness } from './secrets.ts';
import { parseRouteTable, type Route } from '../proxy/route-table.ts';
import { readFrontendConfig, type FrontendConfig } from '../frontend/config.ts';
import { parseClientKeys, type ClientKey } from './client-keys.ts';

export interface Config {
  /** The public origin, e.g. `https://app.example.com` (no trailing slash). */
  appOrigin: string;
  /** `APP_BASE_URL/auth/callback`: the only redirect URI ever sent. */
  redirectUri: string;
  /** X-Forwarded-Proto / X-Forwarded-Host the proxy sends, from APP_BASE_URL. */
  forwarded: { proto: string; host: string };
  /** `https` origin ⇒ `Secure` cookies with the `__Host-` prefix. */
  secureCookies: boolean;
  oidc: {
    issuer: string;
    clientId: string;
    clientSecret: string | undefined;
    clientAuth: 'client_secret_basic' | 'client_secret_basic_unencoded' | 'client_secret_post' | 'private_key_jwt';
    clientPrivateKey: JsonWebKey | undefined;
    /** OIDC_CLIENT_PRIVATE_KEY parsed: the first signs, all are published at /.well-known/jwks.json. */
    clientKeys: ClientKey[];
    /** OIDC_SCOPES plus every route's scopes. */
    scopes: string;
    prompt: string | undefined;
    allowInsecureHttp: boolean;
    /** Every route's RFC 8707 resource, requested at sign-in so that refreshes may target it. */
    resources: string[];
  };
  session: {
    /** Iron passwords keyed by a stable numeric id derived from each secret. */
    sealPassword: Record<number, string>;
    unsealPasswords: Record<number, string>;
    sameSite: 'strict' | 'lax';
    idleTimeout: number;
    absoluteTimeout: number;
  };
  /** TOKEN_REFRESH_SKEW, REFRESH_GRACE_PERIOD and REFRESH_LOCK_LEASE, in seconds. */
  tokens: { refreshSkew: number; refreshGrace: number; lockLease: number };
  /** SESSION_COOKIE_MAX_BYTES: the whole session cookie family's budget in the Cookie header. */
  cookieMaxBytes: number;
  /** SESSION_ANOMALY_POLICY: `end` ends a session that shows two holders or a sudden change. */
  anomalyPolicy: 'log' | 'end';
  /** SESSION_GEOIP_DB: the offline IP database (lib/ops/ip-database.ts), checked readable at start. */
  geoipDb?: string;
  /** OIDC_CLOCK_TOLERANCE and OIDC_LOGOUT_TOKEN_MAX_AGE, in seconds. */
  clock: { tolerance: number; logoutTokenMaxAge: number };
  /** BFF_ALLOW_INSECURE_UPSTREAM. */
  allowInsecureUpstream: boolean;
  /** REDIS_URL / REDIS_CLUSTER_NODES; undefined: the memory of this process. */
  redis: { url: string | undefined; clusterNodes: string[]; keyPrefix: string };
  /** RATE_LIMIT_API, RATE_LIMIT_AUTH (per minute, 0 = off), TRUSTED_PROXY_HOPS. */
  rateLimits: { api: number; auth: number };
  trustedProxyHops: number;
  /** SESSION_STORAGE (default cookie) and OIDC_END_SESSION_HINT (default client_id). */
  sessionStorage: 'cookie' | 'server';
  endSessionHint: 'client_id' | 'id_token';
  routes: Route[];
  port: number;
  /** OPS_TOKEN: the `/ops/` endpoints' bearer token; undefined: they answer 404. */
  opsToken: string | undefined;
  /** BFF_FRONTEND_*: the web app served on the broker's origin; undefined: the broker's own start page. */
  frontend: FrontendConfig | undefined;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const KNOWN_VARIABLES = new Set(Object.keys(envSchema.shape));

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * Validates the whole environment in one pass and lists every problem at once, each
 * naming the variable and the fix. Pure: takes the environment, returns a `Config` or
 * throws a `ConfigError`.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];

  for (const name of Object.keys(env)) {
    if (KNOWN_VARIABLES.has(name)) continue;
    if (KNOWN_PREFIXES.some((p) => name.startsWith(p))) {
      problems.push(`${name} is not a variable the broker knows (a typo?); known: ${[...KNOWN_VARIABLES].join(', ')}`);
      continue;
    }
    const meant = UNPREFIXED_VARIABLES.find((known) => editDistance(name.toUpperCase(), known) <= 2);
    if (meant) problems.push(`${name} is not a variable the broker knows: did you mean ${meant}?`);
  }

  // Each variable is parsed on its own so that one bad value does not hide the others.
  const e: Partial<RawEnv> = {};
  for (const [name, schema] of Object.entries(envSchema.shape)) {
    const result = schema.safeParse(env[name]);
    if (result.success) (e as Record<string, unknown>)[name] = result.data;
    else for (const issue of result.error.issues) problems.push(issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`);
  }
  return checkAndBuild(e, problems);
}

/**
 * The route table. Unset, it is the demo table (CONTRACT.md's default) — but only for a
 * loopback APP_BASE_URL: behind a public origin the demo routes would send every user's
 * access tokens to whatever listens on localhost:3002 and :3003 (a sidecar, another
 * tenant's process), so a forgotten BFF_ROUTES refuses to start instead.
 */
function readRoutes(e: Partial<RawEnv>, problems: string[], publicOrigin: boolean): Route[] {
  let routeInput: unknown = DEMO_ROUTES;
  const source = e.BFF_ROUTES_FILE ? 'BFF_ROUTES_FILE' : 'BFF_ROUTES';
  if (e.BFF_ROUTES && e.BFF_ROUTES_FILE) {
    problems.push('BFF_ROUTES and BFF_ROUTES_FILE are both set: choose one');
    return [];
  }
  if (!e.BFF_ROUTES && !e.BFF_ROUTES_FILE && publicOrigin) {
    problems.push(
      'BFF_ROUTES (or BFF_ROUTES_FILE) is required when APP_BASE_URL is not localhost: without it the demo routes would forward users\' access tokens to localhost:3002 and localhost:3003. Set your route table (see README, "Route table"), or BFF_ROUTES=[] for none',
    );
    return [];
  }
  if (e.BFF_ROUTES || e.BFF_ROUTES_FILE) {
    try {
      // `||`, not `??`: an empty BFF_ROUTES counts as unset above, so the file must be read.
      routeInput = JSON.parse(e.BFF_ROUTES || readFileSync(e.BFF_ROUTES_FILE as string, 'utf8'));
    } catch (error) {
      const why = error instanceof SyntaxError ? 'is not valid JSON' : 'could not be read';
      problems.push(`${source} ${why}: give a JSON array of routes (see README, "Route table")`);
      return [];
    }
  }
  const table = parseRouteTable(routeInput, { allowInsecureUpstream: e.BFF_ALLOW_INSECURE_UPSTREAM ?? false });
  if (table.ok) return table.routes;
  problems.push(...table.problems.map((p) => `${source} ${p}`));
  return [];
}

/**
 * REDIS_URL and REDIS_CLUSTER_NODES (owned by the store, lib/stores/redis.ts). Values are
 * never echoed: a Redis URL carries its password.
 */
function checkRedis(e: Partial<RawEnv>, problems: string[]): void {
  const nodes = (e.REDIS_CLUSTER_NODES ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  if (e.REDIS_URL && nodes.length > 0) {
    problems.push('REDIS_URL and REDIS_CLUSTER_NODES are both set: give REDIS_URL for one server or REDIS_CLUSTER_NODES for a cluster, not both');
  }
  if (e.REDIS_URL) {
    const url = parseUrl(e.REDIS_URL);
    if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname) {
      problems.push('REDIS_URL must be a redis:// or rediss:// (TLS) URL such as rediss://user:password@redis.example.com:6380 (value not shown: it may hold a password)');
    } else if (url.search || url.hash || (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname))) {
      problems.push('REDIS_URL may carry user, password, host, port and a database number (/0) only: remove the rest (value not shown: it may hold a password)');
    }
  }
  if (e.REDIS_CLUSTER_NODES !== undefined && e.REDIS_CLUSTER_NODES.trim() !== '' && nodes.length === 0) {
    problems.push('REDIS_CLUSTER_NODES is empty: give comma-separated host:port seed nodes, e.g. redis-1:6379,redis-2:6379');
  }
  const bad = nodes.filter((node) => !/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(node) || Number(node.slice(node.lastIndexOf(':') + 1)) > 65535);
  if (bad.length > 0) {
    problems.push(`REDIS_CLUSTER_NODES entries ${bad.map((node) => nodes.indexOf(node) + 1).join(', ')} are not host:port: give comma-separated host:port seed nodes, e.g. redis-1:6379,redis-2:6379`);
  }
}

/**
 * The checks that span variables. Each runs on whatever parsed, so that a missing
 * variable does not hide a short secret or a bad route table.
 */
function checkAndBuild(e: Partial<RawEnv>, problems: string[]): Config {
  const problemsBeforeBase = problems.length;
  const base = e.APP_BASE_URL === undefined ? undefined : parseUrl(e.APP_BASE_URL);
  if (e.APP_BASE_URL === undefined) {
    // already reported as missing
  } else if (!base || (base.protocol !== 'https:' && base.protocol !== 'http:')) {
    // Never echoed: a secret pasted into the wrong variable would end up in the logs.
    problems.push('APP_BASE_URL must be an absolute http(s) origin such as https://app.example.com (the value given is not one; it is not repeated here)');
  } else {
    if (base.pathname !== '/' || base.search || base.hash || base.username || base.password) {
      problems.push('APP_BASE_URL must be an origin only (scheme, host, port) with no path, query, fragment or user info');
    }
    if (base.protocol === 'http:' && !isLoopbackHost(base.hostname)) {
      problems.push('APP_BASE_URL must use https (http is allowed only for localhost, where cookies cannot be Secure)');
    }
  }

  // A public origin, once APP_BASE_URL itself is acceptable (its own problem says the rest).
  const publicOrigin = base !== undefined && problems.length === problemsBeforeBase && !isLoopbackHost(base.hostname);

  const issuer = e.OIDC_ISSUER === undefined ? undefined : parseUrl(e.OIDC_ISSUER);
  if (e.OIDC_ISSUER === undefined) {
    // already reported as missing
  } else if (!issuer || (issuer.protocol !== 'https:' && issuer.protocol !== 'http:')) {
    problems.push('OIDC_ISSUER must be an absolute https URL such as https://id.example.com/realms/main (the value given is not one; it is not repeated here)');
  } else if (issuer.protocol === 'http:' && !e.OIDC_ALLOW_INSECURE_HTTP) {
    problems.push('OIDC_ISSUER uses http: set OIDC_ALLOW_INSECURE_HTTP=true for local tests only, or use the provider\'s https issuer');
  }

  let clientKeys: ClientKey[] = [];
  if (e.OIDC_CLIENT_AUTH === 'private_key_jwt') {
    if (!e.OIDC_CLIENT_PRIVATE_KEY) {
      problems.push('OIDC_CLIENT_PRIVATE_KEY is required with OIDC_CLIENT_AUTH=private_key_jwt: a private JWK as JSON, or a JWK Set {"keys": [...]} whose first key signs');
    } else {
      const parsed = parseClientKeys(e.OIDC_CLIENT_PRIVATE_KEY);
      if ('problems' in parsed) problems.push(...parsed.problems);
      else clientKeys = parsed.keys;
    }
  } else if (!e.OIDC_CLIENT_SECRET) {
    problems.push(`OIDC_CLIENT_SECRET is required with OIDC_CLIENT_AUTH=${e.OIDC_CLIENT_AUTH}`);
  }
  // Unencoded Basic credentials are `id:secret` as they are: a ":" in either is ambiguous (RFC 7617 §2).
  if (e.OIDC_CLIENT_AUTH === 'client_secret_basic_unencoded' && (e.OIDC_CLIENT_ID?.includes(':') || e.OIDC_CLIENT_SECRET?.includes(':'))) {
    problems.push('OIDC_CLIENT_AUTH=client_secret_basic_unencoded cannot send a client id or secret containing ":": use client_secret_post or client_secret_basic');
  }

  const secrets = (e.SESSION_SECRETS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (e.SESSION_SECRETS !== undefined && secrets.length === 0) {
    problems.push('SESSION_SECRETS is empty: give one or more comma-separated secrets of 32+ characters');
  }
  secrets.forEach((secret, i) => {
    const weakness = secretWeakness(secret);
    if (weakness) problems.push(`SESSION_SECRETS entry ${i + 1} ${weakness} (e.g. \`openssl rand -base64 32\`)`);
  });
  if (new Set(secrets.map(passwordId)).size !== secrets.length) {
    problems.push('SESSION_SECRETS lists the same secret twice: remove the duplicate');
  }

  if (e.SESSION_IDLE_TIMEOUT && e.SESSION_ABSOLUTE_TIMEOUT && e.SESSION_IDLE_TIMEOUT > e.SESSION_ABSOLUTE_TIMEOUT) {
    problems.push('SESSION_IDLE_TIMEOUT must not exceed SESSION_ABSOLUTE_TIMEOUT');
  }

  checkRedis(e, problems);

  if (e.SESSION_GEOIP_DB) {
    try {
      ipDatabase(e.SESSION_GEOIP_DB);
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'could not be read as an MMDB database';
      problems.push(`SESSION_GEOIP_DB ${why}: give the path of a MaxMind DB file (e.g. GeoLite2-ASN.mmdb), or leave it unset to use the /24 and /48 networks alone`);
    }
  }

  // The ops token ends any user's sessions: it must be as unguessable as a session secret.
  if (e.OPS_TOKEN !== undefined) {
    const weakness = secretWeakness(e.OPS_TOKEN);
    if (weakness) problems.push(`OPS_TOKEN ${weakness} (e.g. \`openssl rand -base64 32\`), or leave it unset to turn the /ops/ endpoints off`);
  }

  const routes = readRoutes(e, problems, publicOrigin);
  const frontend = readFrontendConfig(e, problems);

  if (problems.length > 0) throw new ConfigError(problems);
  const v = e as RawEnv;

  const scopes = new Set(v.OIDC_SCOPES.split(/\s+/).filter(Boolean));
  for (const route of routes) for (const scope of route.scopes) scopes.add(scope);
  const resources = [...new Set(routes.map((r) => r.resource).filter((r): r is string => !!r))];
  const [first] = secrets;
  const appOrigin = (base as URL).origin;

  return {
    appOrigin,
    redirectUri: `${appOrigin}/auth/callback`,
    forwarded: { proto: (base as URL).protocol.slice(0, -1), host: (base as URL).host },
    secureCookies: (base as URL).protocol === 'https:',
    oidc: {
      issuer: v.OIDC_ISSUER,
      clientId: v.OIDC_CLIENT_ID,
      clientSecret: v.OIDC_CLIENT_SECRET,
      clientAuth: v.OIDC_CLIENT_AUTH,
      clientPrivateKey: clientKeys[0]?.privateJwk,
      clientKeys,
      scopes: [...scopes].join(' '),
      prompt: v.OIDC_PROMPT !== undefined ? v.OIDC_PROMPT || undefined : scopes.has('offline_access') ? 'consent' : undefined,
      allowInsecureHttp: v.OIDC_ALLOW_INSECURE_HTTP,
      resources,
    },
    session: {
      sealPassword: { [passwordId(first)]: first },
      unsealPasswords: Object.fromEntries(secrets.map((s) => [passwordId(s), s])),
      sameSite: v.SESSION_SAMESITE,
      idleTimeout: v.SESSION_IDLE_TIMEOUT,
      absoluteTimeout: v.SESSION_ABSOLUTE_TIMEOUT,
    },
    tokens: { refreshSkew: v.TOKEN_REFRESH_SKEW, refreshGrace: v.REFRESH_GRACE_PERIOD, lockLease: v.REFRESH_LOCK_LEASE },
    cookieMaxBytes: v.SESSION_COOKIE_MAX_BYTES,
    anomalyPolicy: v.SESSION_ANOMALY_POLICY,
    geoipDb: v.SESSION_GEOIP_DB || undefined,
    clock: { tolerance: v.OIDC_CLOCK_TOLERANCE, logoutTokenMaxAge: v.OIDC_LOGOUT_TOKEN_MAX_AGE },
    allowInsecureUpstream: v.BFF_ALLOW_INSECURE_UPSTREAM,
    redis: {
      url: v.REDIS_URL || undefined,
      clusterNodes: (v.REDIS_CLUSTER_NODES ?? '').split(',').map((n) => n.trim()).filter(Boolean),
      keyPrefix: v.REDIS_KEY_PREFIX,
    },
    rateLimits: { api: v.RATE_LIMIT_API, auth: v.RATE_LIMIT_AUTH },
    trustedProxyHops: v.TRUSTED_PROXY_HOPS,
    sessionStorage: v.SESSION_STORAGE,
    endSessionHint: v.OIDC_END_SESSION_HINT,
    routes,
    port: v.PORT,
    opsToken: v.OPS_TOKEN || undefined,
    frontend,
  };
}

let cached: { config: Config } | { error: ConfigError } | undefined;

/**
 * The process's configuration, parsed on first use rather than at module load, because
 * `next build` imports route modules without the runtime secrets. A refusal is kept as
 * well: the environment does not change while the process runs, so every later call
 * throws the same ConfigError instead of parsing (and deriving password ids) again.
 */
export function getConfig(): Config {
  if (!cached) {
    try {
      cached = { config: loadConfig(process.env) };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      cached = { error };
    }
  }
  if ('error' in cached) throw cached.error;
  return cached.config;
}

/** Tests that change the environment between cases call this. */
export function resetConfigForTests(): void {
  cached = undefined;
}
