import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, SocketAddress } from 'node:net';
import type { Config } from '../config/load.ts';
import { log } from '../log.ts';

/** Returned when no trustworthy entry is a valid address: one shared bucket, never a bypass. */
export const UNKNOWN_ADDRESS = 'unknown';

/**
 * The client's address, for rate limits and anomaly signals only: never for URLs, never
 * for authorization (CONTRACT.md, TRUSTED_PROXY_HOPS).
 *
 * The chain is the `X-Forwarded-For` entries, left to right, then the socket's peer.
 * Only the right end of it is trustworthy: the peer is what connected to us, and each of
 * the `TRUSTED_PROXY_HOPS` proxies in front appends the address *it* saw. Anything to the
 * left of those entries was written by the client and is ignored, so a forged
 * `X-Forwarded-For: 1.2.3.4` cannot pick its own rate-limit bucket.
 *
 * Where the peer comes from:
 * - `peer` given: a host that holds the socket (the Node front door) passes it, and the
 *   request's `X-Forwarded-For` is as received from the network.
 * - `peer` absent: the peer is already the header's last entry. A Next.js route handler's
 *   `Request` carries no socket address, and `next start` does NOT append it: it sets
 *   `x-forwarded-for ??= socket.remoteAddress` (next/dist/server/base-server.js), keeping
 *   a client-sent header verbatim and dropping the peer. `installPeerHook()` below makes
 *   every HTTP server of the process append its peer, as a proxy hop does, before Next
 *   sees the request; the node:http test host does the same (`forwardedForWithPeer`).
 */
export function clientAddress(request: Request, config: Pick<Config, 'trustedProxyHops'>, peer?: string): string {
  const chain = forwardedChain(request.headers.get('x-forwarded-for'));
  if (peer !== undefined) chain.push(peer);
  const address = addressFromChain(chain, config.trustedProxyHops);
  if (config.trustedProxyHops === 0 && chain.length > 1) warnIfBehindUndeclaredProxy(address);
  return address;
}

const PRIVATE_PEERS = new BlockList();
for (const [network, prefix] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['127.0.0.0', 8], ['100.64.0.0', 10]] as const) {
  PRIVATE_PEERS.addSubnet(network, prefix, 'ipv4');
}
PRIVATE_PEERS.addSubnet('fc00::', 7, 'ipv6');
PRIVATE_PEERS.addAddress('::1', 'ipv6');
let warnedUndeclaredProxy = false;

/**
 * With TRUSTED_PROXY_HOPS=0 behind a reverse proxy, every user has the proxy's address
 * and all share one sign-in budget: the first minute of a busy morning locks everyone
 * out. A peer on a private network that passes X-Forwarded-For is most likely such a
 * proxy; say so once, naming the variable (never an address).
 */
function warnIfBehindUndeclaredProxy(peer: string): void {
  if (warnedUndeclaredProxy || peer === UNKNOWN_ADDRESS) return;
  if (!PRIVATE_PEERS.check(peer, isIP(peer) === 6 ? 'ipv6' : 'ipv4')) return;
  warnedUndeclaredProxy = true;
  log.warn('trusted_proxy_hops_unset', {
    reason: 'requests arrive with X-Forwarded-For from a private-network peer while TRUSTED_PROXY_HOPS=0: behind a reverse proxy every client shares one rate-limit budget; set TRUSTED_PROXY_HOPS to the number of proxies that append to X-Forwarded-For',
  });
}

/** Header entries, left to right (several header lines arrive joined by commas). */
function forwardedChain(header: string | null): string[] {
  if (!header) return [];
  return header.split(',').map((entry) => entry.trim());
}

/**
 * The entry `hops` places left of the peer (the chain's last entry). With fewer entries
 * than hops, every entry there was written by a trusted proxy, so the leftmost is the
 * furthest known client. An entry that is not an address (a proxy writing `unknown`, or
 * garbage) falls back to the next entry to its right: closer to us, so no less trusted.
 */
export function addressFromChain(chain: readonly string[], hops: number): string {
  const start = Math.max(0, chain.length - 1 - hops);
  for (let i = start; i < chain.length; i++) {
    const address = normalizeAddress(chain[i]);
    if (address) return address;
  }
  return UNKNOWN_ADDRESS;
}

/**
 * A canonical form of one entry, or undefined: IPv4 dotted quad, or lower-case
 * compressed IPv6; IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports)
 * becomes IPv4, so one client never counts under two names. Accepts the forms proxies
 * write: `[v6]`, `[v6]:port`, `v4:port`; drops an IPv6 zone (`%eth0`).
 */
export function normalizeAddress(entry: string): string | undefined {
  let value = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value);
  if (bracketed) value = bracketed[1];
  else if (/^[\d.]+:\d{1,5}$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
  value = value.replace(/%[\w.-]+$/, '');
  const family = isIP(value);
  if (family === 4) return value;
  if (family !== 6) return undefined;
  const canonical = new SocketAddress({ address: value, family: 'ipv6' }).address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(canonical);
  return mapped ? mapped[1] : canonical;
}

/**
 * The rate-limit bucket of an address: IPv4 as is, IPv6 by its /64. One host is normally
 * given a whole /64 (RFC 6177, SLAAC), so keying by the full address would let it rotate
 * through 2^64 addresses and never be limited.
 */
export function addressBucket(address: string): string {
  if (isIP(address) !== 6) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/**
 * A coarse description of where an address is, for the session list (`network`): IPv4
 * by its /24, IPv6 by its /48 (a site), so that a user recognises "home" or "office"
 * while neither the list nor the store keeps an address that points at one device.
 */
export function addressNetwork(address: string): string {
  const family = isIP(address);
  if (family === 4) return `${address.split('.').slice(0, 3).join('.')}.0/24`;
  if (family === 6) return `${expandIPv6(address).slice(0, 3).join(':')}::/48`;
  return UNKNOWN_ADDRESS;
}

function expandIPv6(address: string): string[] {
  const [head, tail = ''] = address.includes('::') ? address.split('::') : [address, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (`::1.2.3.4`) is two groups.
  const last = right.length > 0 ? right : left;
  if (last.length > 0 && last[last.length - 1].includes('.')) {
    const octets = last.pop()!.split('.').map(Number);
    last.push(((octets[0] << 8) | octets[1]).toString(16), ((octets[2] << 8) | octets[3]).toString(16));
  }
  const zeros = Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0');
  return [...left, ...zeros, ...right].map((group) => group.replace(/^0+(?=.)/, '').toLowerCase());
}

/** `X-Forwarded-For` with the socket's peer appended, as a proxy hop writes it. */
export function appendPeer(existing: string | string[] | undefined, peer: string | undefined): string {
  const prior = Array.isArray(existing) ? existing.join(', ') : existing;
  // An unknown peer (a socket already gone) is still an entry: the chain must end with
  // what this hop saw, or the client's own last entry would be read as the peer.
  const own = peer ?? UNKNOWN_ADDRESS;
  return prior ? `${prior}, ${own}` : own;
}

const HOOK_KEY = Symbol.for('cloakroom.client-address.peer-hook');
const APPENDED = Symbol.for('cloakroom.client-address.forwarded-for');
type Anchored = typeof globalThis & { [HOOK_KEY]?: true };

/**
 * Makes every HTTP server in this process append the socket's peer to the request's
 * `X-Forwarded-For` before any listener (Next.js) sees it, through Node's public
 * `http.server.request.start` diagnostics channel, published synchronously just before
 * the `request` event. Once per process (Next.js may evaluate this module more than once).
 *
 * Installed from `instrumentation.ts`, which `next start` runs before it handles the
 * first request; a request that arrived while the server was still starting was parsed
 * before the hook existed, and is read by its last header entry.
 */
export function installPeerHook(): void {
  const anchored = globalThis as Anchored;
  // Vercel overwrites X-Forwarded-For with the client's address at its edge, and a
  // function's socket peer is the platform's own bridge: appending it would put every
  // user in one bucket. There the header as received is the chain (TRUSTED_PROXY_HOPS=0).
  if (anchored[HOOK_KEY] || process.env.VERCEL) return;
  anchored[HOOK_KEY] = true;
  subscribe('http.server.request.start', (message) => {
    const request = (message as { request?: IncomingMessage }).request;
    if (request) request.headers['x-forwarded-for'] = forwardedForWithPeer(request);
  });
}

/**
 * The `X-Forwarded-For` a host should hand to the route code for this Node request: the
 * header with the socket's peer appended, exactly once (a front door in a process where
 * the hook also runs must not append the peer twice, or the peer would read as a proxy).
 */
export function forwardedForWithPeer(request: IncomingMessage & { [APPENDED]?: string }): string {
  request[APPENDED] ??= appendPeer(request.headers['x-forwarded-for'], request.socket?.remoteAddress);
  return request[APPENDED];
}
