/**
 * `npm run demo`: everything on localhost with no configuration.
 *   :3001  a development identity provider (oidc-provider, demo users, rotating refresh
 *          tokens, 60-second access tokens so refreshes happen while you watch)
 *   :3002  the demo API  (audience http://localhost:3002/, scope demo:read)
 *   :3003  the reports API (audience http://localhost:3003/, scope reports:read)
 *   :3005  the orders API, reached with exchanged tokens only (RFC 8693: audience
 *          urn:cloakroom:orders, scope orders:read — never the sign-in's token)
 *   :3004  the DPoP-only API (audience http://localhost:3004/, scope secure:read): it
 *          verifies each request's DPoP proof and demands its own nonce (RFC 9449)
 *   :3000  the broker, production build
 * Ctrl-C stops all of it.
 *
 * DEMO_CLIENT_AUTH=private_key_jwt: the broker authenticates with a key of its own
 * (kept in .demo/client-keys.json) instead of a client secret, and the provider knows it
 * only through the broker's `jwks_uri` (APP/.well-known/jwks.json), as in production.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import pretty from 'pino-pretty';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { DEMO_USERS, loadOrCreateDemoJwks, startDevIdp } from './idp.ts';
import { startDemoApi } from './api.ts';
import { startDPoPApi } from './dpop-api.ts';

const BROKER_PORT = 3000;
const IDP_PORT = 3001;
const APP = `http://localhost:${BROKER_PORT}`;
const STATE_DIR = '.demo';

function persistentSecret(file: string): string {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const path = `${STATE_DIR}/${file}`;
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, secret, { mode: 0o600 });
  return secret;
}

const children: ChildProcess[] = [];
const closers: Array<() => Promise<void>> = [];
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
    await Promise.allSettled(closers.map((close) => close()));
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const nextBin = createRequire(import.meta.url).resolve('next/dist/bin/next');
if (process.env.DEMO_SKIP_BUILD !== '1') {
  process.stdout.write('Building the broker (next build)…\n');
  const build = spawnSync(process.execPath, [nextBin, 'build'], { stdio: 'inherit', env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
  if (build.status !== 0) await stop(build.status ?? 1);
}

const clientSecret = persistentSecret('client-secret');

/** The broker's private_key_jwt key set (DEMO_CLIENT_AUTH=private_key_jwt), created once. */
async function demoClientKeys(): Promise<{ keys: object[] }> {
  const path = `${STATE_DIR}/client-keys.json`;
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as { keys: object[] };
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const keys = { keys: [{ ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'ES256' }] };
  writeFileSync(path, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  return keys;
}
const privateKeyJwt = process.env.DEMO_CLIENT_AUTH === 'private_key_jwt';
const clientAuthentication = privateKeyJwt
  ? { OIDC_CLIENT_AUTH: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(await demoClientKeys()) }
  : { OIDC_CLIENT_SECRET: clientSecret };
const resources = {
  'http://localhost:3002/': { scope: 'demo:read' },
  'http://localhost:3003/': { scope: 'reports:read' },
  'http://localhost:3004/': { scope: 'secure:read' },
};
const ORDERS_AUDIENCE = 'urn:cloakroom:orders';
const jwksFile = `${STATE_DIR}/idp-jwks.json`;
const idp = await startDevIdp({
  port: IDP_PORT,
  jwks: await loadOrCreateDemoJwks(jwksFile),
  // Token exchange for the orders API (registerGrantType in demo/idp.ts).
  exchangeAudiences: { [ORDERS_AUDIENCE]: { scope: 'orders:read orders:write' } },
  // `curl -X POST http://localhost:3001/dev/rotate-signing-keys`: a new key signs, the old still verify.
  rotationEndpoint: true,
  onKeysRotated: (jwks) => writeFileSync(jwksFile, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 }),
  resources,
  accessTokenTtl: 60,
  rotateRefreshTokens: true,
  // RFC 9449 with required nonces, for the DPoP-only API on :3004.
  dpop: true,
  clients: [
    {
      client_id: 'cloakroom-demo',
      client_secret: clientSecret,
      redirect_uris: [`${APP}/auth/callback`],
      post_logout_redirect_uris: [`${APP}/`],
      backchannel_logout_uri: `${APP}/auth/backchannel-logout`,
      // The provider fetches the broker's public keys from its key set endpoint.
      ...(privateKeyJwt ? { token_endpoint_auth_method: 'private_key_jwt' as const, jwks_uri: `${APP}/.well-known/jwks.json` } : {}),
    },
  ],
});
closers.push(() => idp.close());
const demoApi = await startDemoApi({ port: 3002, issuer: idp.issuer, audience: 'http://localhost:3002/', name: 'demo' });
closers.push(() => demoApi.close());
const reportsApi = await startDemoApi({ port: 3003, issuer: idp.issuer, audience: 'http://localhost:3003/', name: 'reports' });
closers.push(() => reportsApi.close());
const secureApi = await startDPoPApi({ port: 3004, issuer: idp.issuer, audience: 'http://localhost:3004/', name: 'secure (DPoP only)', publicOrigin: 'http://localhost:3004' });
closers.push(() => secureApi.close());
const ordersApi = await startDemoApi({ port: 3005, issuer: idp.issuer, audience: ORDERS_AUDIENCE, name: 'orders' });
closers.push(() => ordersApi.close());
// The demo routes, the DPoP-only API's (issue 12) and the exchanged-token API's.
const DEMO_ROUTE_TABLE = [
  { path: '/api/demo', upstream: demoApi.url, auth: 'required', resource: 'http://localhost:3002/', scopes: ['demo:read'] },
  { path: '/api/reports', upstream: reportsApi.url, auth: 'required', resource: 'http://localhost:3003/', scopes: ['reports:read'] },
  { path: '/api/secure', upstream: 'http://localhost:3004', auth: 'required', resource: 'http://localhost:3004/', scopes: ['secure:read'], dpop: true },
  { path: '/api/orders', upstream: ordersApi.url, auth: 'required', methods: ['GET'], exchange: { audience: ORDERS_AUDIENCE, scope: 'orders:read' } },
];

// `npm start`'s server (scripts/start.ts: the front door), as in production.
const broker = spawn(process.execPath, [fileURLToPath(new URL('../scripts/start.ts', import.meta.url))], {
  stdio: ['ignore', 'inherit', 'pipe'],
  env: {
    ...process.env,
    NEXT_TELEMETRY_DISABLED: '1',
    PORT: String(BROKER_PORT),
    APP_BASE_URL: APP,
    OIDC_ISSUER: idp.issuer,
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: 'cloakroom-demo',
    ...clientAuthentication,
    SESSION_SECRETS: persistentSecret('session-secret'),
    BFF_ROUTES: JSON.stringify(DEMO_ROUTE_TABLE),
  },
});
children.push(broker);
broker.on('exit', (code) => {
  if (!stopping) {
    process.stderr.write(`The broker stopped (exit ${code}).\n`);
    void stop(code ?? 1);
  }
});
/**
 * The broker's log, human-readable: it writes JSON lines (lib/log.ts) and they are
 * prettified here, in the demo's process, never inside the broker (pino transports run
 * worker threads, which Next.js bundles do not survive). Lines that are not JSON pass as they are.
 */
const readableLog = pretty({ colorize: Boolean(process.stderr.isTTY), messageKey: 'event', destination: 2, translateTime: 'SYS:HH:MM:ss.l', sync: true });
let announced = false;
broker.stderr?.on('data', (chunk: Buffer) => {
  readableLog.write(chunk);
  const text = chunk.toString();
  if (!announced && text.includes('"event":"server_listening"')) {
    announced = true;
    const users = DEMO_USERS.filter((u) => u.username !== 'carol')
      .map((u) => `    ${u.username.padEnd(8)} ${u.password}`)
      .join('\n');
    process.stdout.write(`
  Cloakroom demo is running.

  Open  ${APP}

  Demo users (username / password):
${users}

  Identity provider  ${idp.issuer}
  Demo API           ${demoApi.url}
  Reports API        ${reportsApi.url}
  DPoP-only API      ${secureApi.url}  (behind /api/secure, "dpop": true)
  Orders API         ${ordersApi.url}  (exchanged tokens only)

  Rotate the provider's signing keys:  curl -X POST ${idp.issuer}/dev/rotate-signing-keys

  Ctrl-C stops everything.
`);
  }
});
