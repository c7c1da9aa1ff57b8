/**
 * The forward of a `"dpop": true` route (RFC 9449 §7): `Authorization: DPoP <token>` and a
 * fresh proof of the session's key per request, whose `htu` is the UPSTREAM URL (the
 * API checks the URL it serves, not the broker's) and whose `ath` is the token's hash.
 *
 * Server nonces (§9): an API may answer 401 `WWW-Authenticate: DPoP error="use_dpop_nonce"`
 * with a `DPoP-Nonce`; the request is then sent once more with a proof carrying it. A
 * second sending needs the body again, so a body whose `Content-Length` fits
 * `DPOP_RETRY_BUFFER_BYTES` is buffered, and so is any body while the session's handle
 * knows no nonce for that API (the first call, or after a restart) — up to that limit.
 * A larger body is streamed as it comes; if the API then asks for a nonce the call fails
 * with 502 `upstream_unavailable` (the nonce is learnt, so the browser's retry goes
 * through) — never a half-consumed stream sent again. Once a nonce is known, a chunked
 * upload (no `Content-Length`) or a large one streams without buffering. Any
 * `DPoP-Nonce` an API answers with is remembered for the next proof.
 *
 * The proxy's undici forward (forward.ts) is kept rather than openid-client's
 * `fetchProtectedResource`: that one would re-serialise the URL (the path and query
 * must reach the API byte for byte), buffer nothing but fail its retry on a stream
 * ("disturbed or locked"), and has none of the route's deadline, pools or idle timeouts.
 */
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';
import type { SessionProver } from '../oidc/dpop.ts';
import { forward, type ForwardOptions, type UpstreamAnswer } from './forward.ts';
import type { UpstreamTarget } from './path.ts';
import type { Route } from './route-table.ts';

/** The most a DPoP route buffers to be able to send a body twice (nonce retry). */
export const DPOP_RETRY_BUFFER_BYTES = 1024 * 1024;

type Body = ReadableStream<Uint8Array> | null;

/** Whether an answer asks for a (new) nonce: RFC 9449 §9, the `use_dpop_nonce` challenge. */
export function asksForNonce(status: number, headers: UpstreamAnswer['headers']): boolean {
  if (status !== 401) return false;
  const challenge = headers['www-authenticate'];
  const values = Array.isArray(challenge) ? challenge : challenge ? [challenge] : [];
  return values.some((value) => /(^|,)\s*dpop\b[^]*\berror\s*=\s*"?use_dpop_nonce"?/i.test(value));
}

function nonceOf(headers: UpstreamAnswer['headers']): string | undefined {
  const nonce = headers['dpop-nonce'];
  const value = Array.isArray(nonce) ? nonce[0] : nonce;
  // RFC 9449 §8.1: nonce = 1*NQCHAR; anything else is not put in a signed proof.
  return value && /^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/.test(value) ? value : undefined;
}

/** A body readable once, now, up to `limit` bytes: the whole of it, or undefined (then `rest` streams it all). */
async function bufferUpTo(body: ReadableStream<Uint8Array>, limit: number): Promise<{ whole: Uint8Array } | { rest: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { whole: Buffer.concat(chunks) };
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) break;
  }
  // Over the limit: what was read goes first, the rest streams on as it arrives.
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      chunks.length = 0;
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return { rest };
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

export async function forwardWithProof(
  target: UpstreamTarget,
  method: string,
  headers: Headers,
  body: Body,
  route: Route,
  options: ForwardOptions,
  prover: SessionProver,
  accessToken: string,
): Promise<UpstreamAnswer> {
  // htu (RFC 9449 §4.2): the upstream URL without query and fragment.
  const htu = target.url;
  const sendsBody = body !== null && method !== 'GET' && method !== 'HEAD';
  let replayable: Uint8Array | undefined;
  let first: Body = body;
  // Buffered (so that a nonce retry can send it again) when it is known to fit — a
  // `Content-Length` within the limit, as every JSON call has — or when no nonce is known
  // yet for this API, so a retry is likely. A chunked upload to an API whose nonce is
  // known streams as it comes.
  const declared = headers.get('content-length');
  const fits = declared !== null && /^\d+$/.test(declared) && Number(declared) <= DPOP_RETRY_BUFFER_BYTES;
  if (sendsBody && (fits || !prover.knowsNonce(htu))) {
    let buffered: Awaited<ReturnType<typeof bufferUpTo>>;
    try {
      buffered = await bufferUpTo(body, DPOP_RETRY_BUFFER_BYTES);
    } catch (error) {
      // The browser went away or broke off its upload: nothing was sent to the API.
      options.onSettled?.();
      throw new BrokerError('invalid_request', { publicMessage: 'the request body could not be read', cause: error });
    }
    if ('whole' in buffered) first = streamOf((replayable = buffered.whole));
    else first = buffered.rest;
  }

  const send = async (payload: Body, sendOptions: ForwardOptions): Promise<UpstreamAnswer> => {
    headers.set('authorization', `DPoP ${accessToken}`);
    headers.set('dpop', await prover.proof(htu, method, accessToken));
    const answer = await forward(target, method, headers, payload, route, sendOptions);
    const nonce = nonceOf(answer.headers);
    if (nonce) prover.rememberNonce(htu, nonce);
    return answer;
  };

  let retrying = false;
  let settled = false;
  const settle = () => {
    if (settled) return;
    settled = true;
    options.onSettled?.();
  };
  const firstOptions: ForwardOptions = {
    ...options,
    // The first exchange's end settles the call only when there is no second one.
    onSettled: () => {
      if (!retrying) settle();
    },
  };
  const answer = await send(first, firstOptions);
  if (!asksForNonce(answer.status, answer.headers) || !nonceOf(answer.headers)) return answer;

  retrying = true;
  settled = false;
  await answer.body?.cancel().catch(() => undefined);
  if (sendsBody && replayable === undefined) {
    // The body went out as a stream (over the buffer limit): it cannot be sent again.
    log.warn('dpop_nonce_retry_impossible', { route: route.path, limitBytes: DPOP_RETRY_BUFFER_BYTES });
    settle();
    throw new BrokerError('upstream_unavailable', {
      publicMessage: `the API asked for a new DPoP nonce and the request body (over ${DPOP_RETRY_BUFFER_BYTES} bytes) cannot be sent twice; send the request again`,
    });
  }
  return send(replayable ? streamOf(replayable) : null, { ...options, onSettled: settle });
}
