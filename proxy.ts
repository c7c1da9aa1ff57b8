import { BrokerError } from './lib/errors.ts';
import { errorResponse } from './lib/http/responses.ts';
import { log } from './lib/log.ts';

/**
 * Next.js answers a dynamic segment holding a percent-escape that is not valid UTF-8
 * (`/api/demo/%FF`, overlong `%C0%AE`) with a bare 500 before any route code runs
 * (vercel/next.js#92527). Such a path is a bad request: 400 `invalid_request`, as the
 * proxy answers every other refused path. Authorization is never done here (CVE-2025-29927):
 * this only refuses, and runs only for /api paths holding a `%` (the matcher).
 */
export function proxy(request: Request): Response | undefined {
  const { pathname } = new URL(request.url);
  try {
    decodeURIComponent(pathname);
    return undefined;
  } catch {
    log.warn('proxy_path_refused', { reason: 'a percent-escape that is not valid UTF-8' });
    return errorResponse(new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' }));
  }
}

export const config = { matcher: '/api/:rest(.*%.*)' };
