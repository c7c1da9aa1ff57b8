import { createServer } from 'node:net';

/**
 * A port nobody listens on right now, for a server a test is about to start.
 *
 * Drawn at random below Linux's ephemeral range (32768–60999), not from the kernel's
 * `listen(0)`: a port the kernel hands out that way is an ephemeral port, and the very same
 * number is soon given to some outgoing connection (the broker's pool, a Redis client) of
 * the other test file running beside this one — whose server then fails with EADDRINUSE.
 * Below 22768 a Redis Cluster node's bus port (port + 10000) stays out of that range too.
 * Each port is handed out once per process and checked free by listening on it.
 */
const LOWEST = 20_000;
const HIGHEST = 22_767;
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port between ${LOWEST} and ${HIGHEST}`);
}
