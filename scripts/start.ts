/**
 * `npm start`: validates the configuration first, listing every problem at once, and
 * only then serves the production build on PORT. A broker with a bad configuration
 * never starts half-working.
 *
 * The broker's endpoints are answered by its own front door (server/front-door.ts),
 * straight from the node request; pages and assets by Next.js through its documented
 * custom-server API. It serves from this process rather than spawning
 * `next start`, because `next start` creates its Node server with the defaults and offers
 * no way to set the limits below. The PID of `npm start`'s node is the server's.
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, type Config } from '../lib/config/load.ts';
import { log } from '../lib/log.ts';

/**
 * Node's limits for the browser side (Node's defaults: 16 KiB of headers, 60 s for the
 * headers, 300 s for a whole request).
 */
const SERVER_LIMITS = {
  /**
   * 64 KiB of request headers. The broker keeps its own cookies under
   * SESSION_COOKIE_MAX_BYTES (7 KiB), but a browser may still carry an oversized cookie
   * from before that budget, or from another app on the same host. With Node's 16 KiB it
   * would get 431 on every request, /auth/logout included, so the broker could never
   * clear it; with 64 KiB it reaches the broker and is answered.
   */
  maxHeaderSize: 64 * 1024,
  /** A client must send its request headers within 20 s (slow-loris connections are cut with 408). */
  headersTimeout: 20_000,
  /**
   * A whole request, body included, must arrive within 120 s: a slow client cannot hold a
   * connection open indefinitely. An upload that needs longer must bypass the broker.
   */
  requestTimeout: 120_000,
  /** How often Node checks the two timeouts above (its default is 30 s, which would let a slow client linger up to 50 s). */
  connectionsCheckingInterval: 5_000,
} as const;

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`Cloakroom cannot start. ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

// Traces (OTEL_* set) before Next is loaded, so that one SDK serves this process — the
// front door's spans and Next's own; instrumentation.ts then finds it (lib/ops/tracing-sdk.ts).
const { startTracing, stopTracing } = await import('../lib/ops/tracing-sdk.ts');
await startTracing();

// As `next start` does; before Next is loaded, which reads it.
(process.env as Record<string, string>).NODE_ENV ??= 'production';
const { default: next } = await import('next');
// The front door and its handlers after NODE_ENV too, as Next's copy of them sees it.
const { attachFrontDoor } = await import('../server/front-door.ts');
const { probeProvider, providerConfigurationProblems } = await import('../lib/oidc/provider.ts');
const { frontendEndpoint } = await import('../lib/frontend/handler.ts');
const { upgradeToFrontend } = await import('../lib/frontend/upstream.ts');

const { port } = config;
const server = createServer(SERVER_LIMITS);
const app = next({ dev: false, dir: fileURLToPath(new URL('..', import.meta.url)), port, httpServer: server });
await app.prepare();
// instrumentation.ts probed the provider for Next's copy of lib/; this process's own copy
// (the front door's) shares that state on globalThis, so this is normally instant. Never
// refuses the start: the provider may simply not be up yet.
await Promise.race([probeProvider(config).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
// A provider that answers but lacks what the route table needs — the token-exchange grant
// for `"exchange"` routes, DPoP (RFC 9449) for `"dpop"` routes — is a configuration error
// like any other: refuse to start, naming each route and the fix. Checked against the
// discovery document when the provider answered in time (else on the first such call).
{
  const { dpopProblemsAtStart } = await import('../lib/oidc/dpop.ts');
  const problems = [...(providerConfigurationProblems() ?? []), ...(await dpopProblemsAtStart(config))];
  if (problems.length > 0) {
    process.stderr.write(`Cloakroom cannot start. ${new ConfigError(problems).message}\n`);
    process.exit(1);
  }
}
// Next's request handler would add its own 'upgrade' listener to this server on the first
// page request (next/dist/server/next.js setupWebSocketHandler), which ends every socket it
// does not own — the API's WebSockets included. The front door's one listener decides.
Object.assign(app, { didWebSocketSetup: true });
attachFrontDoor(server, {
  origin: config.appOrigin,
  next: { request: app.getRequestHandler(), upgrade: app.getUpgradeHandler() },
  // A production build has no upgrade of its own (hot reload is the dev server's).
  nextUpgrades: false,
  // BFF_FRONTEND_DIR / BFF_FRONTEND_UPSTREAM: the app replaces the demo start page (README, "Fronting your web app").
  frontend: config.frontend && {
    endpoint: frontendEndpoint,
    upgrade: config.frontend.upstream ? (req, socket, head) => upgradeToFrontend(req, socket, head, config) : undefined,
  },
});
server.listen(port, () => log.info('server_listening', { port }));

/** How long answers in flight may take to finish once a stop is asked for (a stream may never end). */
const DRAIN_MS = 10_000;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // No new connections; idle keep-alive ones go now, busy ones when their answer ends.
    // Spans still queued are sent before the process goes (a no-op without tracing).
    server.close(() => void app.close().then(stopTracing).finally(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, DRAIN_MS).unref();
  });
}
