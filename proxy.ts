import { NextResponse } from 'next/server';
import { BrokerError } from './lib/errors.ts';
import { errorResponse } from './lib/http/responses.ts';
import { log } from './lib/log.ts';
import { newNonce, pageContentSecurityPolicy } from './lib/security/page-policy.ts';

/**
 * Next.js answers a dynamic segment holding a percent-escape that is not valid UTF-8
 * (`/api/demo/%FF`, overlong `%C0%AE`) with a bare 500 before any route code runs
 * (vercel/next.js#92527). Such a path is a bad request: 400 `invalid_request`, as the
 * proxy answers every other refused path. Authorization is never done here (CVE-2025-29927):
 * this only refuses, and runs only for /api paths holding a `%` (the matcher).
 */
export function proxy(request: Request): Response | undefined {
  const { pathname } = new URL(request.url);
  if (!pathname.startsWith('/api')) return withPagePolicy(request);
  try {
    decodeURIComponent(pathname);
    return undefined;
  } catch {
    log.warn('proxy_path_refused', { reason: 'a percent-escape that is not valid UTF-8' });
    return errorResponse(new BrokerError('invalid_request', { publicMessage: 'the path is not allowed' }));
  }
}

/**
 * The demo page, rendered per request under a policy with a fresh nonce (AUDIT L12;
 * lib/security/page-policy.ts). Next.js takes the nonce from the request's policy.
 */
function withPagePolicy(request: Request): Response {
  const policy = pageContentSecurityPolicy(newNonce());
  const headers = new Headers(request.headers);
  headers.set('content-security-policy', policy);
  const response = NextResponse.next({ request: { headers } });
  response.headers.set('content-security-policy', policy);
  return response;
}

export const config = { matcher: ['/api/:rest(.*%.*)', '/'] };
