/**
 * `npm run demo`: everything on localhost with no configuration.
 *   :3001  a development identity provider (oidc-provider, demo users, rotating refresh
 *          tokens, 60-second access tokens so refreshes happen while you watch)
 *   :3002  the demo API  (audience http://localhost:3002/, scope demo:read)
 *   :3003  the reports API (audience http://localhost:3003/, scope reports:read)
 *   :3004  the DPoP-only API (audience http://localhost:3004/, scope secure:read): it
 *          verifies each request's DPoP proof and demands its own nonce (RFC 9449)
 *   :3000  the broker, production build
 * Ctrl-C stops all of it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DEMO_USERS, loadOrCreateDemoJwks, startDevIdp } from './idp.ts';
import { startDemoApi } from './api.ts';
import { startDPoPApi } from './dpop-api.ts';
import { DEMO_ROUTES } from '../lib/config/demo-routes.ts';

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
const resources = {
  'http://localhost:3002/': { scope: 'demo:read' },
  'http://localhost:3003/': { scope: 'reports:read' },
  'http://localhost:3004/': { scope: 'secure:read' },
};
const idp = await startDevIdp({
  port: IDP_PORT,
  jwks: await loadOrCreateDemoJwks(`${STATE_DIR}/idp-jwks.json`),
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
// The demo routes and a third one whose API accepts only DPoP-bound tokens (issue 12).
const demoRoutes = [
  ...DEMO_ROUTES,
  { path: '/api/secure', upstream: 'http://localhost:3004', auth: 'required', resource: 'http://localhost:3004/', scopes: ['secure:read'], dpop: true },
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
    OIDC_CLIENT_SECRET: clientSecret,
    SESSION_SECRETS: persistentSecret('session-secret'),
    BFF_ROUTES: JSON.stringify(demoRoutes),
  },
});
children.push(broker);
broker.on('exit', (code) => {
  if (!stopping) {
    process.stderr.write(`The broker stopped (exit ${code}).\n`);
    void stop(code ?? 1);
  }
});
let announced = false;
broker.stderr?.on('data', (chunk: Buffer) => {
  process.stderr.write(chunk);
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

  Ctrl-C stops everything.
`);
  }
});
