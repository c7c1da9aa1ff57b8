import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { log } from '../log.ts';

/**
 * The `Host` a request names must be `APP_BASE_URL`'s host (RFC 9110 §7.2). A DNS
 * rebinding page on `attacker.example`, rebound to the broker's address, makes the
 * victim's browser send same-origin requests (no `Origin` on a GET) with
 * `Host: attacker.example`; refusing every other host keeps such a page from reaching
 * the `auth: none` and `optional` routes through the victim's network position.
 *
 * Compared exactly, after the normalisation the URL parser applies (letter case, a
 * default port spelled out, IPv6 forms): `localhost` and `127.0.0.1` are different hosts.
 * Nothing is ever derived from `Host`; it is only checked.
 */
const HOST_SYNTAX = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{0,5})?$/;

export function isConfiguredHost(host: string | null, config: Config): boolean {
  // The common case on every request, without a regex or a URL parse: the configured
  // host exactly as the URL parser normalised it.
  if (host === config.forwarded.host) return true;
  // Anything but a bare host[:port] (user info, a path, spaces) is refused before the URL
  // parser could read it as something else (`evil@app.example.com`).
  if (host === null || !HOST_SYNTAX.test(host)) return false;
  try {
    return new URL(`${config.forwarded.proto}://${host}`).host === config.forwarded.host;
  } catch {
    return false;
  }
}

export function checkHost(request: Request, config: Config): void {
  if (!isConfiguredHost(request.headers.get('host'), config)) {
    // The value is the caller's: not logged.
    log.warn('request_refused', { reason: 'Host is not APP_BASE_URL\'s host' });
    throw new BrokerError('invalid_request', { publicMessage: 'the Host header does not name this application (APP_BASE_URL)' });
  }
}
