/**
 * node:http ↔ web `Request`/`Response`: the front door's only conversion, on every API
 * call, so it copies nothing it can stream and waits for nothing it does not need.
 * - Request: headers as received (rawHeaders, so repeated lines stay repeated), the body
 *   streamed (Readable → web stream, pulled as the handler reads it), and a signal that
 *   aborts when the client goes away (the proxy cancels the upstream call with it).
 * - Response: status and headers at once, each body chunk written as it arrives (a
 *   server-sent event reaches the browser when the API sends it), the next read only
 *   when the socket has drained (backpressure), no body for HEAD (RFC 9110 §9.3.2).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { forwardedForWithPeer } from '../lib/ops/client-address.ts';
import { setRawTarget } from '../lib/http/raw-target.ts';

/** Whether a request carries a body (RFC 9112 §6.3): without either header it has none. */
function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/**
 * The web Request for a node request. `origin` is APP_BASE_URL's, never the Host header's
 * (nothing is derived from Host; handlers check it against the configuration). The raw
 * request-target travels beside it (lib/http/raw-target.ts) for byte-exact forwarding.
 */
export function toRequest(req: IncomingMessage, origin: string, signal: AbortSignal): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  // The socket's peer appended once, as a proxy hop does (lib/ops/client-address.ts):
  // rate limits read the peer as the chain's last entry, exactly as under `next start`.
  headers.set('x-forwarded-for', forwardedForWithPeer(req));
  const target = req.url ?? '/';
  const method = req.method ?? 'GET';
  const body = method !== 'GET' && method !== 'HEAD' && hasBody(req) ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null;
  const request = new Request(origin + target, {
    method,
    headers,
    body,
    signal,
    // @ts-expect-error Node's fetch needs duplex for a streamed request body.
    duplex: 'half',
  });
  setRawTarget(request, target);
  return request;
}

/** Statuses whose answers have no body (RFC 9110 §6.4.1, §15.3.5, §15.4.5). */
const NO_BODY = new Set([204, 205, 304]);

/** Writes a web Response to the node answer, streaming, until it ends or the client goes away. */
export async function sendResponse(response: Response, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') headers[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  const body = response.body;
  if (!body || req.method === 'HEAD' || NO_BODY.has(response.status)) {
    // Cancelling releases whatever the body holds (a pooled upstream connection).
    if (body) await body.cancel().catch(() => undefined);
    res.writeHead(response.status, headers).end();
    return;
  }
  let headed = false;
  const head = () => {
    headed = true;
    res.writeHead(response.status, headers);
  };
  // An event stream's headers go now: the first event may be minutes away, and the
  // browser's EventSource reports "open" only once they arrive.
  if ((headers['content-type'] as string | undefined)?.startsWith('text/event-stream')) {
    head();
    res.flushHeaders();
  }
  const reader = body.getReader();
  let gone = false;
  const onClose = () => {
    gone = true;
    // The client went away mid-answer: cancelling the body aborts the upstream read.
    void reader.cancel().catch(() => undefined);
  };
  res.once('close', onClose);
  try {
    let next = reader.read();
    for (;;) {
      const { done, value } = await next;
      if (gone) return;
      if (done) {
        if (!headed) head();
        res.end();
        return;
      }
      next = reader.read();
      // Read one ahead, for one turn of the event loop at most: when that was the last
      // chunk (most API answers are one), the headers and the whole body leave in one
      // write, framed by Content-Length instead of chunks. A stream's next chunk is not
      // there yet, and this one goes out at once (server-sent events arrive as sent).
      const ahead = await Promise.race([next, nextTurn()]);
      if (gone) return;
      if (ahead !== NOT_YET && ahead.done && !headed) {
        headers['content-length'] ??= String(value.byteLength);
        head();
        res.end(value);
        return;
      }
      if (!headed) head();
      if (!res.write(value)) await drained(res);
    }
  } catch {
    // The body failed (the API dropped, an idle timeout): the only honest signal left is
    // a cut connection, never a truncated answer that looks whole.
    res.destroy();
  } finally {
    res.off('close', onClose);
  }
}

const NOT_YET = Symbol('not yet');
function nextTurn(): Promise<typeof NOT_YET> {
  return new Promise((resolve) => setImmediate(resolve, NOT_YET));
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
