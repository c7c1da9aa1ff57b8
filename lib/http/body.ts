import type { z } from 'zod';
import { BrokerError } from '../errors.ts';

/**
 * A small JSON body, read with a byte counter that stops at the cap and validated with a
 * zod schema. Route handlers put no limit on a body: without one, a single large POST
 * holds its whole size in memory. A `Content-Length` beyond the cap is refused before a
 * byte is read; a chunked body as soon as it passes the cap. Anything that is not JSON of
 * the schema's shape is 400 invalid_request, never a 500 (the parse error's text, which
 * quotes the input, is not echoed).
 */
export async function readJsonBody<T>(request: Request, schema: z.ZodType<T>, maxBytes: number): Promise<T> {
  const text = await readCappedText(request, maxBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BrokerError('invalid_request', { publicMessage: 'the body must be JSON' });
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw new BrokerError('invalid_request', { publicMessage: 'the body is not one of the accepted shapes' });
  return result.data;
}

/**
 * The body as text, holding at most `maxBytes`: a `Content-Length` beyond it is refused
 * before a byte is read, a chunked body (no length) as soon as it passes it (400
 * invalid_request). JSON bodies here, the back-channel logout's form body too.
 */
export async function readCappedText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = () => new BrokerError('invalid_request', { publicMessage: `the body exceeds ${maxBytes} bytes` });
  const declared = request.headers.get('content-length');
  if (declared !== null && !(/^\d+$/.test(declared) && Number(declared) <= maxBytes)) throw tooLarge();
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > maxBytes) {
      // Nothing more is kept. What the client has sent meanwhile is read and dropped (as
      // Node does with a body no one reads) until the server closes the connection after
      // the answer: unread bytes at close make TCP reset the connection, and the answer
      // would be lost even to a client that stopped sending once it came (RFC 9112 §9.6).
      void discard(reader);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function discard(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  try {
    while (!(await reader.read()).done);
  } catch {
    // The connection closed: nothing left to drop.
  }
}
