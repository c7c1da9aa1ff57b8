/**
 * An HTTP forwarder on the issuer's port, in front of a real oidc-provider, for tests
 * that need the provider to misbehave in ways a network does: `shut()` refuses
 * connections and `open()` accepts them again on the same port; the token endpoint can
 * answer 503 (`failTokenEndpoint`), answer late (`tokenDelayMs`: the request reaches
 * the provider at once, the answer is held back), or never answer at all after the
 * provider processed the request (`dropTokenAnswers`: the connection is reset, as a
 * timeout or a crash after sending would look). Every refresh token the provider issues
 * is kept in `issuedRefreshTokens`, every token sent for revocation in `revokedTokens`
 * (never printed).
 *
 * Usage: open the gate, start the stack with `idp.issuer = gate.issuer`, then set
 * `gate.target = stack.idp.port`.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startStack, type Stack } from './stack.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

export class ProviderGate {
  port = 0;
  target = 0;
  failTokenEndpoint = false;
  tokenDelayMs = 0;
  /** How many token answers to drop (reset the connection) after the provider answered. */
  dropTokenAnswers = 0;
  readonly issuedRefreshTokens: string[] = [];
  /** The `token` of every request to the revocation endpoint, in order (never printed). */
  readonly revokedTokens: string[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  get issuer(): string {
    return `http://localhost:${this.port}`;
  }

  async open(): Promise<void> {
    const server = createServer((req, res) => this.#forward(req, res));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops listening and cuts every open connection (pooled keep-alive ones too). */
  async shut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    const isTokenEndpoint = req.method === 'POST' && (req.url ?? '').split('?')[0] === '/token';
    if (isTokenEndpoint && this.failTokenEndpoint) {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain' }).end('temporarily unavailable');
      return;
    }
    if (req.method === 'POST' && (req.url ?? '').split('?')[0] === '/token/revocation') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const token = new URLSearchParams(body.toString()).get('token');
        if (token) this.revokedTokens.push(token);
        this.#send(req, res, false, body);
      });
      return;
    }
    this.#send(req, res, isTokenEndpoint, undefined);
  }

  #send(req: IncomingMessage, res: ServerResponse, isTokenEndpoint: boolean, buffered: Buffer | undefined): void {
    const outgoing = httpRequest(
      { host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.rawHeaders, setHost: false },
      (answer) => {
        const headers: string[] = [];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i] as string;
          if (!HOP_BY_HOP.has(name.toLowerCase())) headers.push(name, answer.rawHeaders[i + 1] as string);
        }
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          if (isTokenEndpoint && answer.statusCode === 200) {
            const token = (JSON.parse(body.toString()) as { refresh_token?: unknown }).refresh_token;
            if (typeof token === 'string') this.issuedRefreshTokens.push(token);
          }
          if (isTokenEndpoint && this.dropTokenAnswers > 0) {
            this.dropTokenAnswers -= 1;
            res.socket?.destroy();
            return;
          }
          const send = () => {
            res.writeHead(answer.statusCode ?? 502, headers);
            res.end(body);
          };
          if (isTokenEndpoint && this.tokenDelayMs > 0) setTimeout(send, this.tokenDelayMs);
          else send();
        });
      },
    );
    outgoing.on('error', () => res.destroy());
    if (buffered) outgoing.end(buffered);
    else req.pipe(outgoing);
  }
}

export interface GatedStack {
  gate: ProviderGate;
  stack: Stack;
  up: TestUpstream;
  close(): Promise<void>;
}

/**
 * The refresh suites' common stack: the real provider (rotation on every use, 4 s access
 * tokens) behind a gate that can hold back or drop its token answers, and one upstream
 * behind `/api/up`.
 */
export async function startGatedStack(): Promise<GatedStack> {
  const gate = new ProviderGate();
  await gate.open();
  const up = await startUpstream();
  const stack = await startStack({
    idp: { issuer: gate.issuer, rotateRefreshTokens: true, accessTokenTtl: 4 },
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url }]) },
  });
  gate.target = stack.idp.port;
  return {
    gate,
    stack,
    up,
    async close() {
      await stack.close();
      await gate.shut();
      await up.close();
    },
  };
}
