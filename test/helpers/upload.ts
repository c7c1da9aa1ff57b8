/**
 * Large request bodies for tests of body limits and streaming: generated chunk by chunk
 * (never held whole in the test process), written with backpressure, either with a
 * `Content-Length` or chunked, and hashed as they are written so that a test can compare
 * what an upstream received byte for byte. Writing stops as soon as the answer arrives
 * (a server that refuses early must not be made to wait for the rest).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

export interface UploadOptions {
  method?: string;
  path: string;
  bytes: number;
  /** true: `Transfer-Encoding: chunked`; false: a `Content-Length` of `bytes`. */
  chunked: boolean;
  headers?: Record<string, string>;
  /** Stop writing after this many bytes and wait for the answer (a client that waits). */
  pauseAfter?: number;
  /** Default 60 s: the test fails instead of hanging. */
  timeoutMs?: number;
}

export interface UploadOutcome {
  /** The answer's status; 0 when the server closed the connection without one. */
  status: number;
  body: string;
  /** Bytes written before the answer came or the connection closed. */
  sent: number;
  /** SHA-256 (hex) of all `bytes`, when every byte was written. */
  sha256: string | undefined;
}

const CHUNK = 64 * 1024;

/** Random content, generated once: each chunk is a copy numbered in its first bytes. */
const BASE = randomBytes(CHUNK);

/** Chunk `i` of an upload: incompressible and distinct, so reordered or repeated chunks change the hash. */
function chunkAt(index: number, size: number): Buffer {
  const chunk = Buffer.from(BASE.subarray(0, size));
  if (size >= 4) chunk.writeUInt32BE(index >>> 0, 0);
  return chunk;
}

export function upload(origin: string, options: UploadOptions): Promise<UploadOutcome> {
  const target = new URL(origin);
  const headers: Record<string, string> = { ...options.headers };
  if (options.chunked) headers['transfer-encoding'] = 'chunked';
  else headers['content-length'] = String(options.bytes);
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    let settled = false;
    const hash = createHash('sha256');
    const finish = (outcome: UploadOutcome) => {
      if (!settled) {
        settled = true;
        resolve(outcome);
      }
    };
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      method: options.method ?? 'POST',
      path: options.path,
      headers,
      agent: false,
      signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), sent, sha256: sent === options.bytes ? hash.digest('hex') : undefined });
      });
      res.on('error', () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), sent, sha256: undefined }));
    });
    req.on('error', (error) => {
      // A server that refuses by closing the connection mid-upload: no answer, not a test bug.
      if ((error as NodeJS.ErrnoException).code === 'ECONNRESET' || (error as NodeJS.ErrnoException).code === 'EPIPE') {
        finish({ status: 0, body: '', sent, sha256: undefined });
      } else if (!settled) {
        settled = true;
        reject(error);
      }
    });
    let index = 0;
    const writeMore = () => {
      while (!answered && sent < options.bytes) {
        if (options.pauseAfter !== undefined && sent >= options.pauseAfter) return;
        const size = Math.min(CHUNK, options.bytes - sent);
        const chunk = chunkAt(index++, size);
        hash.update(chunk);
        sent += size;
        if (!req.write(chunk)) {
          req.once('drain', writeMore);
          return;
        }
      }
      if (!answered) req.end();
    };
    writeMore();
  });
}
