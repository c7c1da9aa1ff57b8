import type { z } from 'zod';
import { BrokerError } from '../errors.ts';

/**
 * A small JSON body, read with a byte counter that stops at the cap and validated with a
 * zod schema. Route handlers put no limit on a body: without one, a single large POST
 * holds its whole size in memory. A `Content-Length` beyond the cap is refused before a
 * byte is read; a chunked body as soon as it passes the cap. Anything that is not JSON of
 * the schema's shape is 400 invalid_request, never a 500 (the parse error's text, which
 * quotes the input, is not echoed).
 * (The same reader as the back-channel logout's form body; the two may share it.)
 */
export async function readJsonBody<T>(request: Request, schema: z.ZodType<T>, maxBytes: number): Promise<T> {
  const text = await readCapped(request, maxBytes);
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

async function readCapped(request: Request, maxBytes: number): Promise<string> {
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
      // Read and drop the rest, so that the answer is not lost to a TCP reset when the
      // connection closes with unread bytes (RFC 9112 §9.6).
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
