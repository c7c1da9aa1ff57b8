/**
 * The third demo API: a resource server that accepts only DPoP-bound access tokens
 * (RFC 9449 §7). The demo (`npm run demo`) and the tests use this one implementation; it
 * lives in demo/, which lib/ never imports. For every request it checks, with jose:
 *
 *   token      `Authorization: DPoP <jwt>`, signed by the issuer (JWKS), `aud` = this API,
 *              carrying `cnf.jkt` (a Bearer token, or a DPoP token without `cnf`, is refused)
 *   proof      exactly one `DPoP` header, `typ` dpop+jwt, an asymmetric `alg`, signed by
 *              the public key in its own `jwk` header (§4.3)
 *   htm, htu   the request's method and THIS API's URL (no query) — a proof made for the
 *              broker's URL is refused
 *   ath        base64url(SHA-256(token))
 *   iat        within IAT_WINDOW_SECONDS of now
 *   jti        never seen before (replay, §11.1)
 *   nonce      the API's current nonce, else 401 `use_dpop_nonce` with `DPoP-Nonce` (§9)
 *   binding    the RFC 7638 thumbprint of the proof's key = the token's `cnf.jkt`
 *
 * It answers with what it saw (never the token), and keeps a log of it for the demo page
 * and the tests (`seen`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { listen } from './listen.ts';

export interface DPoPApiOptions {
  port: number;
  host?: string;
  issuer: string;
  audience: string;
  name?: string;
  /** Default true: proofs must carry this API's nonce. */
  requireNonce?: boolean;
  /** The origin its clients call it at, which `htu` must name. Default `http://127.0.0.1:<port>`. */
  publicOrigin?: string;
}

/** What the API saw of one request it accepted or refused. */
export interface SeenRequest {
  method: string;
  path: string;
  /** `accepted`, or the reason it was refused. */
  outcome: string;
  scheme?: string;
  htu?: string;
  /** Thumbprint of the proof's key, and the token's `cnf.jkt`. */
  proofJkt?: string;
  tokenJkt?: string;
  sub?: string;
  /** Bytes of the body the API read (accepted requests only). */
  bodyBytes?: number;
  bodySha256?: string;
  /** Epoch ms when the body's first byte arrived (streaming shows as first byte long before the end). */
  firstByteAt?: number;
}

export interface DPoPApi {
  url: string;
  port: number;
  seen: SeenRequest[];
  /** The next requests need a new nonce (as an API whose nonce expired). */
  rotateNonce(): void;
  close(): Promise<void>;
}

const IAT_WINDOW_SECONDS = 60;
const PROOF_ALGORITHMS = ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'];

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store', ...headers });
  res.end(payload);
}

const b64uSha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

export async function startDPoPApi(options: DPoPApiOptions): Promise<DPoPApi> {
  const host = options.host ?? '127.0.0.1';
  const name = options.name ?? 'dpop-api';
  const requireNonce = options.requireNonce ?? true;
  const seen: SeenRequest[] = [];
  const usedJti = new Map<string, number>();
  let lastSweep = 0;
  let nonce = randomBytes(16).toString('base64url');
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  let selfUrl = '';

  const keys = async () => {
    if (jwks) return jwks;
    const response = await fetch(`${options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5_000) });
    const metadata = (await response.json()) as { jwks_uri: string };
    return (jwks = createRemoteJWKSet(new URL(metadata.jwks_uri)));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', selfUrl);
    const entry: SeenRequest = { method: req.method ?? '', path: url.pathname, outcome: 'accepted' };
    seen.push(entry);
    const refuse = (reason: string, error = 'invalid_token') => {
      entry.outcome = reason;
      // A refused request's body is not read: drained so the connection stays usable.
      req.resume();
      const challenge = `DPoP error="${error}", algs="ES256"`;
      sendJson(res, 401, { error, reason }, { 'www-authenticate': challenge, ...(error === 'use_dpop_nonce' ? { 'dpop-nonce': nonce } : {}) });
    };

    const match = /^(\S+) ([A-Za-z0-9_.~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!match) return refuse('no token');
    entry.scheme = match[1];
    if (match[1].toLowerCase() !== 'dpop') return refuse('not a DPoP token (the scheme must be DPoP)');
    const token = match[2];
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, await keys(), { issuer: options.issuer, audience: options.audience }));
    } catch {
      return refuse('token signature, issuer, audience or expiry invalid');
    }
    entry.sub = typeof claims.sub === 'string' ? claims.sub : undefined;
    const tokenJkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (typeof tokenJkt !== 'string') return refuse('token not DPoP-bound (no cnf.jkt)');
    entry.tokenJkt = tokenJkt;

    const proofHeader = req.headersDistinct.dpop;
    if (!proofHeader || proofHeader.length !== 1) return refuse('no single DPoP proof', 'invalid_dpop_proof');
    const proof = proofHeader[0] as string;
    let payload;
    let jwk: JWK;
    try {
      const header = decodeProtectedHeader(proof);
      if (header.typ !== 'dpop+jwt' || !header.jwk || 'd' in header.jwk) throw new Error('header');
      jwk = header.jwk as JWK;
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: PROOF_ALGORITHMS }));
    } catch {
      return refuse('proof signature or header invalid', 'invalid_dpop_proof');
    }
    entry.htu = typeof payload.htu === 'string' ? payload.htu : undefined;
    entry.proofJkt = await calculateJwkThumbprint(jwk, 'sha256');
    if (payload.htm !== req.method) return refuse('htm is not the request method', 'invalid_dpop_proof');
    if (payload.htu !== `${url.origin}${url.pathname}`) return refuse('htu is not this API\'s URL', 'invalid_dpop_proof');
    if (payload.ath !== b64uSha256(token)) return refuse('ath is not the token\'s hash', 'invalid_dpop_proof');
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > IAT_WINDOW_SECONDS) return refuse('iat outside the window', 'invalid_dpop_proof');
    if (typeof payload.jti !== 'string' || payload.jti.length < 8) return refuse('no jti', 'invalid_dpop_proof');
    // Proofs older than the iat window are refused anyway: their jtis are forgotten (at most once a second).
    if (now !== lastSweep) {
      lastSweep = now;
      for (const [jti, at] of usedJti) if (at < now - 2 * IAT_WINDOW_SECONDS) usedJti.delete(jti);
    }
    if (usedJti.has(payload.jti)) return refuse('jti replayed', 'invalid_dpop_proof');
    if (entry.proofJkt !== tokenJkt) return refuse('proof key is not the token\'s key (cnf.jkt)');
    // The nonce is checked last: a nonce challenge must not hint that anything else was wrong.
    if (requireNonce && payload.nonce !== nonce) return refuse('nonce missing or stale', 'use_dpop_nonce');
    usedJti.set(payload.jti, now);

    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of req) {
      entry.firstByteAt ??= Date.now();
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).byteLength;
    }
    entry.bodyBytes = bytes;
    entry.bodySha256 = hash.digest('hex');
    sendJson(res, 200, {
      api: name,
      audience: claims.aud,
      scope: claims.scope,
      expiresAt: claims.exp,
      method: req.method,
      path: url.pathname,
      query: url.search,
      sub: entry.sub,
      dpopBound: true,
      tokenJkt,
      proofJkt: entry.proofJkt,
      htu: entry.htu,
      bodyBytes: bytes,
      bodySha256: entry.bodySha256,
    }, { 'dpop-nonce': nonce });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
    });
  });
  const port = await listen(server, options.port, host);
  selfUrl = options.publicOrigin ?? `http://127.0.0.1:${port}`;
  return {
    url: selfUrl,
    port,
    seen,
    rotateNonce() {
      nonce = randomBytes(16).toString('base64url');
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
