/**
 * Floor 3: what a team would write by hand without a framework — a bare `node:http`
 * server that forwards `/forward/...` to the API over undici's keep-alive pool with a
 * fixed `Authorization` header, streaming both ways, nothing else (no session, no CSRF,
 * no header hygiene). The broker's front door is measured against it: what is left
 * between the two is the broker's own work.
 *
 * Reads FLOOR_UPSTREAM and FLOOR_TOKEN, listens on an ephemeral port on 127.0.0.1 and
 * reports it as one JSON line `{"port": N}`.
 */
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';

const upstream = process.env.FLOOR_UPSTREAM;
const token = process.env.FLOOR_TOKEN;
if (!upstream || !token) {
  process.stderr.write('floor3 needs FLOOR_UPSTREAM and FLOOR_TOKEN\n');
  process.exit(2);
}

const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 10_000 });
const PREFIX = '/forward';
/** Hop-by-hop headers (RFC 9110 §7.6.1): the minimum any forwarder must drop. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (!url.startsWith(`${PREFIX}/`)) {
    res.writeHead(404).end();
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
  }
  headers.authorization = `Bearer ${token}`;
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .request({ path: url.slice(PREFIX.length), method: req.method as 'GET', headers, body: hasBody ? req : undefined, signal: abort.signal })
    .then(async (answer) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      res.writeHead(answer.statusCode, out);
      await pipeline(answer.body, res);
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    void pool.close().finally(() => process.exit(0));
  });
}
