import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { addressBucket, appendPeer, clientAddress } from '../../../lib/ops/client-address.ts';

type Payloads = {
  cases: Array<{ name: string; header: string | null; hops: number; address: string }>;
  buckets: Array<{ address: string; bucket: string }>;
};
const payloads = JSON.parse(
  readFileSync(new URL('../../fixtures/forwarded-for-payloads.json', import.meta.url), 'utf8'),
) as Payloads;

function requestWith(header: string | null): Request {
  const headers = new Headers();
  if (header !== null) headers.set('x-forwarded-for', header);
  return new Request('http://localhost/auth/login', { headers });
}

describe('clientAddress: the chain is read from the right, TRUSTED_PROXY_HOPS entries left of the peer', () => {
  for (const { name, header, hops, address } of payloads.cases) {
    it(`${name}: ${JSON.stringify(header)} with ${hops} hop(s) → ${address}`, () => {
      assert.equal(clientAddress(requestWith(header), { trustedProxyHops: hops }), address);
    });
  }

  it('an explicit peer (the front door) is the chain\'s last entry', () => {
    assert.equal(clientAddress(requestWith('1.2.3.4'), { trustedProxyHops: 0 }, '203.0.113.7'), '203.0.113.7');
    assert.equal(clientAddress(requestWith('1.2.3.4, 198.51.100.20'), { trustedProxyHops: 1 }, '10.0.0.2'), '198.51.100.20');
    assert.equal(clientAddress(requestWith(null), { trustedProxyHops: 1 }, '10.0.0.2'), '10.0.0.2');
  });

  it('a forged header never selects the address with no trusted proxy, whatever it holds', () => {
    for (const { header } of payloads.cases) {
      const forged = header === null ? '1.2.3.4' : `${header}, 1.2.3.4`;
      assert.equal(clientAddress(requestWith(forged), { trustedProxyHops: 0 }, '203.0.113.7'), '203.0.113.7');
    }
  });
});

describe('addressBucket: IPv6 by its /64, so one host cannot rotate through its addresses', () => {
  for (const { address, bucket } of payloads.buckets) {
    it(`${address} → ${bucket}`, () => assert.equal(addressBucket(address), bucket));
  }
});

describe('appendPeer: what a proxy hop writes', () => {
  it('appends to a client-sent header, and to several header lines', () => {
    assert.equal(appendPeer(undefined, '203.0.113.7'), '203.0.113.7');
    assert.equal(appendPeer('1.2.3.4', '203.0.113.7'), '1.2.3.4, 203.0.113.7');
    assert.equal(appendPeer(['1.2.3.4', '5.6.7.8'], '203.0.113.7'), '1.2.3.4, 5.6.7.8, 203.0.113.7');
  });

  it('an unknown peer still ends the chain, so the client\'s last entry is never taken for it', () => {
    assert.equal(appendPeer('1.2.3.4', undefined), '1.2.3.4, unknown');
  });
});
