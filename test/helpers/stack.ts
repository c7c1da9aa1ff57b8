/**
 * One integration stack per test file: a real oidc-provider (rotating refresh tokens),
 * the broker's route code over HTTP, and the configuration that ties them together.
 * `BrowserClient` plays a browser: a cookie jar, same-origin headers, no redirects
 * followed on its own.
 */
import { randomBytes } from 'node:crypto';
import { resetConfigForTests } from '../../lib/config/load.ts';
import { resetProviderForTests } from '../../lib/oidc/provider.ts';
import { setStoreForTests } from '../../lib/stores/index.ts';
import { MemoryStore } from '../../lib/stores/memory.ts';
import { startDevIdp, type DevIdp, type DevIdpOptions } from '../../demo/idp.ts';
import { listenBroker, type BrokerServer } from './broker-server.ts';
import { authorizeWithoutBrowser, CookieJar, fetchWithJar } from './idp-login.ts';

export const CLIENT_ID = 'cloakroom-test';

export interface Stack {
  idp: DevIdp;
  broker: BrokerServer;
  clientSecret: string;
  sessionSecret: string;
  store: MemoryStore;
  /** Changes broker configuration (merged over the defaults) and resets its caches. */
  configure(env: Record<string, string | undefined>): void;
  newBrowser(): BrowserClient;
  close(): Promise<void>;
}

export interface StackOptions {
  idp?: Partial<DevIdpOptions>;
  env?: Record<string, string | undefined>;
  /** Extra client settings at the provider (auth method, jwks). */
  client?: Partial<DevIdpOptions['clients'][number]>;
}

export const BROKER_ENV_KEYS = [
  'APP_BASE_URL', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'OIDC_CLIENT_AUTH', 'OIDC_CLIENT_PRIVATE_KEY',
  'OIDC_SCOPES', 'OIDC_PROMPT', 'OIDC_ALLOW_INSECURE_HTTP', 'SESSION_SECRETS', 'SESSION_SAMESITE', 'SESSION_IDLE_TIMEOUT',
  'SESSION_ABSOLUTE_TIMEOUT', 'BFF_ROUTES', 'BFF_ROUTES_FILE', 'TOKEN_REFRESH_SKEW', 'REFRESH_GRACE_PERIOD', 'PORT',
  'RATE_LIMIT_API', 'RATE_LIMIT_AUTH', 'TRUSTED_PROXY_HOPS',
  'SESSION_COOKIE_MAX_BYTES', 'SESSION_STORAGE', 'OIDC_END_SESSION_HINT', 'OPS_TOKEN',
];

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const broker = await listenBroker();
  const clientSecret = randomBytes(24).toString('base64url');
  const sessionSecret = randomBytes(32).toString('base64url');
  const idp = await startDevIdp({
    port: 0,
    rotateRefreshTokens: true,
    ...options.idp,
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: clientSecret,
        redirect_uris: [`${broker.url}/auth/callback`],
        post_logout_redirect_uris: [`${broker.url}/`],
        backchannel_logout_uri: `${broker.url}/auth/backchannel-logout`,
        ...options.client,
      },
    ],
  });
  const base: Record<string, string | undefined> = {
    APP_BASE_URL: broker.url,
    OIDC_ISSUER: idp.issuer,
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: CLIENT_ID,
    OIDC_CLIENT_SECRET: clientSecret,
    SESSION_SECRETS: sessionSecret,
    BFF_ROUTES: '[]',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'error',
    // Every request of these suites comes from 127.0.0.1, and some sign in a hundred
    // times or call an API hundreds of times a second: limits that are on (the check
    // runs on every request) but out of reach. The rate-limit tests set their own.
    RATE_LIMIT_AUTH: '100000',
    RATE_LIMIT_API: '1000000',
  };
  let store = new MemoryStore();
  const stack: Stack = {
    idp,
    broker,
    clientSecret,
    sessionSecret,
    get store() {
      return store;
    },
    configure(env) {
      for (const key of BROKER_ENV_KEYS) delete process.env[key];
      for (const [key, value] of Object.entries({ ...base, ...options.env, ...env })) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      resetConfigForTests();
      resetProviderForTests();
      store.close();
      store = new MemoryStore();
      setStoreForTests(store);
    },
    newBrowser: () => new BrowserClient(broker.url),
    async close() {
      store.close();
      await broker.close();
      await idp.close();
    },
  };
  stack.configure({});
  return stack;
}

/** A browser: one cookie jar across the broker and the provider, same-origin requests. */
export class BrowserClient {
  readonly jar = new CookieJar();
  readonly origin: string;

  constructor(origin: string) {
    this.origin = origin;
  }

  /** A request the app's own JavaScript would make: same-origin, X-CSRF: 1. */
  api(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('x-csrf')) headers.set('x-csrf', '1');
    if (!headers.has('sec-fetch-site')) headers.set('sec-fetch-site', 'same-origin');
    return this.fetch(path, { ...init, headers });
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetchWithJar(this.jar, new URL(path, this.origin), init);
  }

  /** Starts a sign-in at the broker and returns the provider's authorization URL. */
  async startLogin(returnTo?: string): Promise<string> {
    const query = returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`;
    const response = await this.fetch(`/auth/login${query}`);
    if (response.status !== 302) throw new Error(`login answered ${response.status}: ${await response.text()}`);
    return response.headers.get('location') as string;
  }

  /** A complete sign-in through the provider's login form; returns the callback's answer. */
  async signIn(username = 'alice', password = `${username}-password`, returnTo?: string): Promise<Response> {
    const authorizationUrl = await this.startLogin(returnTo);
    const callback = await authorizeWithoutBrowser(authorizationUrl, { username, password }, `${this.origin}/auth/callback`, { jar: this.jar });
    return this.fetch(callback.pathname + callback.search);
  }

  /** The raw value of a cookie the broker set, e.g. to copy or tamper with it. */
  cookie(name: string): string | undefined {
    const header = this.jar.header(new URL(this.origin)) ?? '';
    for (const part of header.split('; ')) {
      const eq = part.indexOf('=');
      if (part.slice(0, eq) === name) return part.slice(eq + 1);
    }
    return undefined;
  }

  cookieHeader(): string {
    return this.jar.header(new URL(this.origin)) ?? '';
  }
}
