/**
 * One production stack per end-to-end test file: the real broker (`next start` on the
 * build in .next, as ONE child process whose PID is the server), a development identity
 * provider with rotating refresh tokens, and two demo APIs with their own audiences
 * behind `/api/demo` and `/api/reports`.
 *
 * The provider's token endpoint is watched: every access, refresh and ID token value it
 * hands out (sign-ins and every later refresh) is collected in `issuedTokens`, so tests
 * can prove that none of them ever reaches the browser or the logs.
 *
 * The server's output is kept in memory (`serverStderr()`), never printed — unless the
 * test process ends with a failure, when it is written out to help the diagnosis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { startDemoApi, type DemoApi } from '../../demo/api.ts';
import { startDPoPApi, type DPoPApi } from '../../demo/dpop-api.ts';
import { startDevIdp, type DevClient, type DevIdp, type DevIdpOptions } from '../../demo/idp.ts';
import { BROKER_ENV_KEYS } from './stack.ts';
import { freePort } from './ports.ts';

export const CLIENT_ID = 'cloakroom-e2e';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NEXT_BIN = 'node_modules/next/dist/bin/next';
const READY_TIMEOUT_MS = 30_000;

export interface ProductionStack {
  /** The broker's origin, `http://localhost:<port>` (also APP_BASE_URL). */
  url: string;
  port: number;
  /** The server's PID (a new one after `restartServer()`). */
  readonly pid: number;
  idp: DevIdp;
  demoApi: DemoApi;
  reportsApi: DemoApi;
  /** With `dpopRoute`: the API behind `/api/secure`, which accepts only DPoP-bound tokens. */
  dpopApi?: DPoPApi;
  dpopAudience?: string;
  /** `http://localhost:<port>/`: the audience of each API's tokens. */
  demoAudience: string;
  reportsAudience: string;
  clientSecret: string;
  sessionSecret: string;
  /** Every access, refresh and ID token value the provider issued, in order. */
  issuedTokens: string[];
  /** The same, with the kind of each (an ID token travels to the provider as `id_token_hint` at logout). */
  issued: IssuedToken[];
  serverStderr(): string;
  serverStdout(): string;
  /** Stops the broker process and starts a new one (same port and environment): what a deploy or a crash does. */
  restartServer(envChanges?: Record<string, string | undefined>): Promise<void>;
  /** Another broker process with the same environment on its own port (same APP_BASE_URL); stopped with the stack. */
  startSecondInstance(): Promise<{ port: number; pid: number; close(): Promise<void> }>;
  close(): Promise<void>;
}

export interface IssuedToken {
  kind: 'access_token' | 'refresh_token' | 'id_token';
  value: string;
  grantType: string;
}

export interface ProductionStackOptions {
  /** Extra environment for the broker, merged over the defaults (undefined removes). */
  env?: Record<string, string | undefined>;
  idp?: Partial<DevIdpOptions>;
  /** Start the broker with `npm start` (scripts/start.ts, its Node limits) instead of a bare `next start`. */
  npmStart?: boolean;
  /** Adds `/api/live`: the demo API again, with `"websocket": true` (its WebSocket echo). */
  liveRoute?: boolean;
  /** More routes, built once the provider runs (an API of the test's own needs its issuer). */
  extraRoutes?: (idp: DevIdp) => Promise<Array<Record<string, unknown>>>;
  /** Merged over the broker's client registration at the provider (e.g. private_key_jwt with a jwks_uri on the broker's origin). */
  client?: Partial<DevClient> | ((brokerUrl: string) => Partial<DevClient>);
  /**
   * Adds `/api/secure`: the DPoP-only API (demo/dpop-api.ts) with `"dpop": true`, and
   * turns on the provider's DPoP with required nonces (issue 12).
   */
  dpopRoute?: boolean;
  /** Seconds the DPoP API's tokens live. Default 4 (a refresh within seconds). */
  dpopAccessTokenTtl?: number;
}

export { freePort };

/* Every server this process started, so that none outlives it — whatever way it ends. */
const liveServers = new Set<ChildProcess>();
const outputs: Array<{ stdout: () => string; stderr: () => string }> = [];
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', (code) => {
    for (const child of liveServers) child.kill('SIGKILL');
    const failed = code !== 0 || (process.exitCode !== undefined && process.exitCode !== 0);
    if (failed) {
      for (const output of outputs) {
        process.stderr.write(`\n--- broker stdout ---\n${output.stdout()}\n--- broker stderr ---\n${output.stderr()}\n`);
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const child of liveServers) child.kill('SIGKILL');
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

async function waitForHealthz(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exit ${code ?? signal}`;
  });
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the broker stopped before it was ready (${exited}):\n${stderr()}`);
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      const body = await response.text();
      if (response.status === 200) return;
      throw new Error(`/healthz answered ${response.status}: ${body}`);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('/healthz answered')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`the broker did not answer /healthz within ${READY_TIMEOUT_MS} ms:\n${stderr()}`);
}

export async function startProductionStack(options: ProductionStackOptions = {}): Promise<ProductionStack> {
  installExitHook();
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    closers.length = 0;
  };

  try {
    const [port, demoPort, reportsPort] = [await freePort(), await freePort(), await freePort()];
    const url = `http://localhost:${port}`;
    const demoAudience = `http://localhost:${demoPort}/`;
    const reportsAudience = `http://localhost:${reportsPort}/`;
    const clientSecret = randomBytes(24).toString('base64url');
    const sessionSecret = randomBytes(32).toString('base64url');

    const dpopPort = options.dpopRoute ? await freePort() : 0;
    const dpopAudience = options.dpopRoute ? `http://localhost:${dpopPort}/` : undefined;
    const idp = await startDevIdp({
      port: 0,
      rotateRefreshTokens: true,
      resources: {
        [demoAudience]: { scope: 'demo:read' },
        [reportsAudience]: { scope: 'reports:read' },
        // Short-lived, so that a test sees a DPoP-bound token refreshed within seconds.
        ...(dpopAudience ? { [dpopAudience]: { scope: 'secure:read', accessTokenTtl: options.dpopAccessTokenTtl ?? 4 } } : {}),
      },
      ...(options.dpopRoute ? { dpop: true } : {}),
      ...options.idp,
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: clientSecret,
          redirect_uris: [`${url}/auth/callback`],
          post_logout_redirect_uris: [`${url}/`],
          backchannel_logout_uri: `${url}/auth/backchannel-logout`,
          ...(typeof options.client === 'function' ? options.client(url) : options.client),
        },
      ],
    });
    closers.push(() => idp.close());

    // The token endpoint's answer, as sent: the code grant and every refresh.
    const issuedTokens: string[] = [];
    const issued: IssuedToken[] = [];
    idp.provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const body = ctx.body as Record<string, unknown> | undefined;
      for (const kind of ['access_token', 'refresh_token', 'id_token'] as const) {
        const value = body?.[kind];
        if (typeof value !== 'string' || value.length === 0) continue;
        issuedTokens.push(value);
        issued.push({ kind, value, grantType: String(ctx.oidc.params?.grant_type ?? '') });
      }
    });

    const demoApi = await startDemoApi({ port: demoPort, issuer: idp.issuer, audience: demoAudience, name: 'demo' });
    closers.push(() => demoApi.close());
    const reportsApi = await startDemoApi({ port: reportsPort, issuer: idp.issuer, audience: reportsAudience, name: 'reports' });
    closers.push(() => reportsApi.close());

    const routes = [
      { path: '/api/demo', upstream: demoApi.url, auth: 'required', methods: ['GET', 'POST'], resource: demoAudience, scopes: ['demo:read'] },
      { path: '/api/reports', upstream: reportsApi.url, auth: 'required', methods: ['GET'], resource: reportsAudience, scopes: ['reports:read'] },
    ];
    if (options.liveRoute) {
      routes.push({ path: '/api/live', upstream: demoApi.url, auth: 'required', methods: ['GET'], resource: demoAudience, scopes: ['demo:read'], websocket: true } as (typeof routes)[number]);
    }
    if (options.extraRoutes) routes.push(...((await options.extraRoutes(idp)) as typeof routes));
    let dpopApi: DPoPApi | undefined;
    if (dpopAudience) {
      dpopApi = await startDPoPApi({ port: dpopPort, issuer: idp.issuer, audience: dpopAudience, name: 'secure' });
      closers.push(() => (dpopApi as DPoPApi).close());
      routes.push({ path: '/api/secure', upstream: dpopApi.url, auth: 'required', methods: ['GET', 'POST', 'PUT'], resource: dpopAudience, scopes: ['secure:read'], dpop: true } as (typeof routes)[number]);
    }
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const key of BROKER_ENV_KEYS) delete env[key];
    Object.assign(env, {
      NEXT_TELEMETRY_DISABLED: '1',
      NODE_ENV: 'production',
      // Everything the broker logs, so that the secrets-in-logs checks see the most.
      LOG_LEVEL: 'debug',
      APP_BASE_URL: url,
      OIDC_ISSUER: idp.issuer,
      OIDC_ALLOW_INSECURE_HTTP: 'true',
      OIDC_CLIENT_ID: CLIENT_ID,
      OIDC_CLIENT_SECRET: clientSecret,
      SESSION_SECRETS: sessionSecret,
      BFF_ROUTES: JSON.stringify(routes),
    });
    for (const [key, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }

    const stderrChunks: Buffer[] = [];
    const stdoutChunks: Buffer[] = [];
    const serverStderr = () => Buffer.concat(stderrChunks).toString('utf8');
    const serverStdout = () => Buffer.concat(stdoutChunks).toString('utf8');
    outputs.push({ stdout: serverStdout, stderr: serverStderr });

    let child: ChildProcess;
    let exited: Promise<void>;
    const launch = async (listenPort = port) => {
      // npmStart: the broker's own `npm start` (scripts/start.ts), which reads PORT.
      if (options.npmStart) env.PORT = String(listenPort);
      const args = options.npmStart ? ['scripts/start.ts'] : [NEXT_BIN, 'start', '--port', String(listenPort)];
      child = spawn(process.execPath, args, {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const launched = child;
      liveServers.add(launched);
      exited = new Promise<void>((resolve) => launched.once('exit', () => resolve()));
      launched.once('exit', () => liveServers.delete(launched));
      launched.stderr?.on('data', (chunk: Buffer) => stderrChunks.push(chunk));
      launched.stdout?.on('data', (chunk: Buffer) => stdoutChunks.push(chunk));
      await waitForHealthz(`http://localhost:${listenPort}`, launched, serverStderr);
    };
    const stopServer = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      }
    };
    closers.push(stopServer);
    await launch();

    return {
      url,
      port,
      get pid() {
        return child.pid as number;
      },
      idp,
      demoApi,
      reportsApi,
      dpopApi,
      dpopAudience,
      demoAudience,
      reportsAudience,
      clientSecret,
      sessionSecret,
      issuedTokens,
      issued,
      serverStderr,
      serverStdout,
      restartServer: async (envChanges = {}) => {
        await stopServer();
        // A deploy with new configuration (a key rotation step): undefined removes a variable.
        for (const [key, value] of Object.entries(envChanges)) {
          if (value === undefined) delete env[key];
          else env[key] = value;
        }
        await launch();
      },
      startSecondInstance: async () => {
        // The same environment (APP_BASE_URL included) on another port: a second instance
        // behind the same public origin, as a load balancer would spread them.
        const first = { child, exited };
        const secondPort = await freePort();
        await launch(secondPort);
        const second = { child, exited };
        [child, exited] = [first.child, first.exited];
        const stopSecond = async () => {
          if (second.child.exitCode === null && second.child.signalCode === null) {
            second.child.kill('SIGTERM');
            const timer = setTimeout(() => second.child.kill('SIGKILL'), 3_000);
            await second.exited;
            clearTimeout(timer);
          }
        };
        closers.push(stopSecond);
        return { port: secondPort, pid: second.child.pid as number, close: stopSecond };
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
