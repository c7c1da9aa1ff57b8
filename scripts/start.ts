/**
 * `npm start`: validates the configuration first, listing every problem at once, and
 * only then serves the production build on PORT. A broker with a bad configuration
 * never starts half-working.
 *
 * It serves from this process (Next's documented custom-server API) rather than spawning
 * `next start`, because `next start` creates its Node server with the defaults and offers
 * no way to set the limits below. The PID of `npm start`'s node is the server's.
 */
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../lib/config/load.ts';
import { log } from '../lib/log.ts';
import { handleUpgrade, refuseUpgrade } from '../lib/proxy/websocket.ts';
import { BrokerError } from '../lib/errors.ts';

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

let port: number;
try {
  port = loadConfig(process.env).port;
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`Cloakroom cannot start. ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

// As `next start` does; before Next is loaded, which reads it.
(process.env as Record<string, string>).NODE_ENV ??= 'production';
const { default: next } = await import('next');

const server = createServer(SERVER_LIMITS);
const app = next({ dev: false, dir: fileURLToPath(new URL('..', import.meta.url)), port, httpServer: server });
await app.prepare();
const handle = app.getRequestHandler();
// Next's request handler would add its own 'upgrade' listener to this server on the first
// request (next/dist/server/next.js setupWebSocketHandler), which ends every socket it
// does not own — ours included. The one listener below decides instead.
Object.assign(app, { didWebSocketSetup: true });
const nextUpgrade = app.getUpgradeHandler();
server.on('request', (request, response) => void handle(request, response));
server.on('upgrade', (request, socket, head) => {
  const path = (request.url ?? '').split('?')[0];
  if (path === '/api' || path.startsWith('/api/')) void handleUpgrade(request, socket, head);
  // Next's own sockets (hot reload under a dev server); nothing else upgrades.
  else if (path.startsWith('/_next/')) void nextUpgrade(request, socket, head);
  else void refuseUpgrade(socket, new BrokerError('not_found'));
});
server.listen(port, () => log.info('server_listening', { port }));

/** How long answers in flight may take to finish once a stop is asked for (a stream may never end). */
const DRAIN_MS = 10_000;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    // No new connections; idle keep-alive ones go now, busy ones when their answer ends.
    server.close(() => void app.close().finally(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => {
      server.closeAllConnections();
      process.exit(0);
    }, DRAIN_MS).unref();
  });
}
