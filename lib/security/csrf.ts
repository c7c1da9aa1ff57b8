import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';

/**
 * Anti-forgery for the broker's JSON endpoints and the proxy.
 *
 * `X-CSRF: 1` is a custom header: a cross-origin page can only send it after a CORS
 * preflight, which the broker never approves, and a plain form or <img> cannot send it
 * at all. Fetch metadata and Origin are checked as well, so that a browser that does
 * send them is stopped even before the header would matter. `same-site` is refused
 * too: a sibling subdomain is another application.
 */
export function checkCsrf(request: Request, config: Config): void {
  if (request.headers.get('x-csrf') !== '1') {
    throw new BrokerError('csrf', { publicMessage: 'the X-CSRF: 1 header is required' });
  }
  checkSameOrigin(request, config, { requireEvidence: false });
}

/**
 * Same-origin evidence for state-changing navigations such as `POST /auth/logout`,
 * which a form posts (no custom header possible): the `Origin` must be ours, or, where
 * a browser sends no Origin, `Sec-Fetch-Site` must say same-origin.
 */
export function checkSameOrigin(request: Request, config: Config, options = { requireEvidence: true }): void {
  const origin = request.headers.get('origin');
  const site = request.headers.get('sec-fetch-site');
  if (origin !== null && origin !== config.appOrigin) {
    throw new BrokerError('csrf', { publicMessage: 'cross-origin request refused' });
  }
  if (site !== null && site !== 'same-origin' && site !== 'none') {
    throw new BrokerError('csrf', { publicMessage: 'cross-site request refused' });
  }
  if (options.requireEvidence && origin === null && site !== 'same-origin') {
    throw new BrokerError('csrf', { publicMessage: 'same-origin request required' });
  }
}
