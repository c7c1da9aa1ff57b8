/**
 * Its own file (its own process): the warning is once per process, and the address
 * tests would have used it up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientAddress } from '../../../lib/ops/client-address.ts';

function requestWith(header: string): Request {
  return new Request('http://localhost/auth/login', { headers: { 'x-forwarded-for': header } });
}

describe('TRUSTED_PROXY_HOPS=0 behind what looks like a proxy', () => {
  it('is logged once, naming the variable and no address', () => {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      // A public peer passing X-Forwarded-For is no sign of a proxy of ours.
      clientAddress(requestWith('198.51.100.20, 203.0.113.7'), { trustedProxyHops: 0 });
      assert.equal(lines.length, 0);
      for (let i = 0; i < 3; i++) clientAddress(requestWith('198.51.100.20, 10.0.0.2'), { trustedProxyHops: 0 });
    } finally {
      process.stderr.write = write;
    }
    assert.equal(lines.length, 1, 'once per process');
    const line = JSON.parse(lines[0]) as Record<string, string>;
    assert.equal(line.event, 'trusted_proxy_hops_unset');
    assert.match(line.reason, /TRUSTED_PROXY_HOPS/);
    assert.ok(!lines[0].includes('198.51.100.20') && !lines[0].includes('10.0.0.2'), 'no address in the log');
  });
});
