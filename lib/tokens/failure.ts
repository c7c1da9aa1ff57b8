import { isHttpResponse, isInvalidGrant } from '../oidc/provider.ts';

/**
 * What a failed refresh request tells about the refresh token it carried (AUDIT L13):
 *
 *   grant_gone  the provider refused the grant (`invalid_grant`): the session is over
 *   answered    the provider answered with an error status: it issued nothing, the
 *               token is as good as before — an outage, the session is kept
 *   not_sent    the request certainly never reached the provider (connection refused,
 *               DNS, no discovery): an outage, the session is kept
 *   unknown     the request was sent and no usable answer came back (a timeout or a
 *               reset after sending, a 200 whose body or ID token fails validation):
 *               the provider may have rotated, so the token must never be sent again
 *
 * Only `isInvalidGrant` (lib/oidc/provider.ts) decides "grant gone"; a broader
 * classifier of token-endpoint errors (any 4xx but 429, issue 13) plugs in there.
 */
export type RefreshFailure = 'grant_gone' | 'answered' | 'not_sent' | 'unknown';

/** Error codes of a connection that was never established (Node, undici). */
const NEVER_CONNECTED = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT',
  // The TLS handshake failed: no request was written (an expired or mismatched provider certificate).
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

function causes(error: unknown): unknown[] {
  const seen: unknown[] = [];
  const queue = [error];
  while (queue.length > 0 && seen.length < 16) {
    const next = queue.shift();
    if (next === undefined || next === null || seen.includes(next)) continue;
    seen.push(next);
    if (typeof next === 'object') {
      const object = next as { cause?: unknown; response?: unknown; errors?: unknown };
      queue.push(object.cause, object.response);
      if (Array.isArray(object.errors)) queue.push(...object.errors);
    }
  }
  return seen;
}

export function classifyRefreshFailure(error: unknown): RefreshFailure {
  if (isInvalidGrant(error)) return 'grant_gone';
  const chain = causes(error);
  // openid-client keeps the provider's Response on its errors (`cause` or `response`).
  const status = chain.find(isHttpResponse)?.status;
  if (status !== undefined) return status >= 200 && status < 300 ? 'unknown' : 'answered';
  const codes = chain.map((c) => (c && typeof c === 'object' ? (c as { code?: unknown }).code : undefined));
  if (codes.some((code) => typeof code === 'string' && NEVER_CONNECTED.has(code))) return 'not_sent';
  return 'unknown';
}
