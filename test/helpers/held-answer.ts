/**
 * A browser-side request whose answer is held open: an EventSource that keeps reading,
 * or a slow reader that takes the headers and then never reads another byte (its TCP
 * window fills, and backpressure reaches the broker). Each has its own connection.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';

export interface HeldAnswer {
  status: number;
  /** Body bytes read so far (stays 0 for a reader that does not read). */
  readonly received: number;
  /** The answer ended or failed on the broker's side. */
  readonly ended: boolean;
  close(): void;
}

export function holdAnswer(
  origin: string,
  path: string,
  headers: Record<string, string>,
  options: { read: boolean; timeoutMs?: number } = { read: true },
): Promise<HeldAnswer> {
  const target = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path,
      headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', ...headers },
      agent: false,
    });
    // A test must fail, not hang, when the headers never come.
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to ${path} within ${options.timeoutMs ?? 8_000} ms`));
    }, options.timeoutMs ?? 8_000);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.on('response', (res: IncomingMessage) => {
      clearTimeout(timer);
      let received = 0;
      let ended = false;
      res.on('end', () => (ended = true));
      res.on('error', () => (ended = true));
      res.on('close', () => (ended = true));
      if (options.read) res.on('data', (chunk: Buffer) => (received += chunk.length));
      else res.pause();
      resolve({
        status: res.statusCode ?? 0,
        get received() {
          return received;
        },
        get ended() {
          return ended;
        },
        close: () => req.destroy(),
      });
    });
    req.end();
  });
}
