import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';

/**
 * The one gate of every `/ops/` endpoint (revoke, sessions, metrics): the bearer token of
 * OPS_TOKEN (RFC 6750 §2.1).
 *  - No OPS_TOKEN configured: 404 not_found, as if the path did not exist — an operator
 *    surface that is off must not even be probed for.
 *  - A missing or wrong token: 401 unauthenticated with `WWW-Authenticate: Bearer`
 *    (RFC 6750 §3), the same answer for both, so a caller learns nothing but "no".
 * The comparison runs over SHA-256 digests with `timingSafeEqual`: equal lengths whatever
 * was sent, and no early exit that would let response timing reveal a prefix of the token.
 */
export function checkOpsToken(request: Request, config: Config): void {
  if (!config.opsToken) throw new BrokerError('not_found');
  const header = request.headers.get('authorization') ?? '';
  const match = /^Bearer +([^\s]+) *$/i.exec(header);
  const presented = match ? match[1] : '';
  if (!safeEqual(presented, config.opsToken)) {
    throw new BrokerError('unauthenticated', { headers: [['www-authenticate', 'Bearer realm="cloakroom-ops"']] });
  }
}

function safeEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  // The digests are compared in constant time; `presented.length > 0` adds no timing
  // signal about the token (it is a property of the request alone).
  return timingSafeEqual(a, b) && presented.length > 0;
}

/**
 * The other methods of an `/ops/` endpoint: 404 while OPS_TOKEN is unset (the surface does
 * not exist), else 405 with `Allow`.
 */
export function opsMethodNotAllowed(allow: readonly string[]): (request: Request, config: Config) => Promise<Response> {
  return async (_request, config) => {
    if (!config.opsToken) throw new BrokerError('not_found');
    throw new BrokerError('method_not_allowed', { headers: [['allow', allow.join(', ')]] });
  };
}
