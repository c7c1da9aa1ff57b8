import { NextResponse } from 'next/server.js';
import { BrokerError } from './lib/errors.ts';
import { errorResponse } from './lib/http/responses.ts';
import { log } from './lib/log.ts';
import { newNonce, pageContentSecurityPolicy } from './lib/security/page-policy.ts';

/**
 * Next.js answers a dynamic segment holding a percent-escape that is not valid UTF-8
 * (`/api/demo/%FF`, overlong `%C0%AE`) with a bare 500 before any route code runs
 * (vercel/next.js#92527). Such a path is a bad request: 400 `invalid_request`, as the
 * proxy answers every other refused path. Authorization is never done here (CVE-2025-29927):
 * this only refuses, and runs only for the /api paths the matcher selects.
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

/**
 * Only the /api paths that `decodeURIComponent` refuses: a `%` not followed by two hex
 * digits, or escapes of bytes >= 0x80 that are not well-formed UTF-8 (RFC 3629 §4).
 * Next.js makes every request this matcher selects wait for, and copy, its whole body
 * before any route code runs (and cuts it at `experimental.proxyClientMaxBodySize`,
 * next.config.js): a path that is sent on to the route must therefore never match, or
 * an upload to `/api/files/report%202024.pdf` or `/api/files/caf%C3%A9` would be buffered
 * and truncated. The negative lookahead reads "not made only of": a character other than
 * `%`, an ASCII escape `%00`–`%7F`, or one well-formed UTF-8 sequence of escapes —
 * `%C2`–`%DF` + 1 continuation (`%80`–`%BF`); `%E0` `%A0`–`%BF` + 1; `%E1`–`%EC`,
 * `%EE`–`%EF` + 2; `%ED` `%80`–`%9F` + 1 (no surrogates); `%F0` `%90`–`%BF` + 2;
 * `%F1`–`%F3` + 3; `%F4` `%80`–`%8F` + 2 (nothing above U+10FFFF). Next.js compiles the
 * matcher without the `i` flag, hence both letter cases. test/unit/proxy/matcher.test.ts
 * compares it with `decodeURIComponent` through Next's own matcher code.
 */
export const config = {
  matcher: [
    '/api/:rest((?!(?:[^%]|%[0-7][0-9A-Fa-f]|%(?:[Cc][2-9A-Fa-f]|[Dd][0-9A-Fa-f])%[89ABab][0-9A-Fa-f]|%[Ee]0%[ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][1-9A-Ca-cEeFf]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][Dd]%[89][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]0%[9ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff][1-3]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]4%8[0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f])*$).*)',
    // The demo page, for its per-request Content-Security-Policy nonce.
    '/',
  ],
};
