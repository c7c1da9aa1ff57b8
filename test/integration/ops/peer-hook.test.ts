/**
 * The peer hook (what `instrumentation.ts` installs under `next start`) on a real
 * node:http server: every request's X-Forwarded-For ends with the socket's peer before any
 * listener sees it, a client-sent header is kept to its left, and a host that asks again
 * (`forwardedForWithPeer`, the front door) does not append the peer a second time.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { clientAddress, forwardedForWithPeer, installPeerHook } from '../../../lib/ops/client-address.ts';
import { rawRequest } from '../../helpers/raw-http.ts';

let origin = '';
const seen: Array<{ header: string | undefined; again: string }> = [];
const server = createServer((req: IncomingMessage, res) => {
  seen.push({ header: req.headers['x-forwarded-for'] as string | undefined, again: forwardedForWithPeer(req) });
  res.end('ok');
});

before(async () => {
  installPeerHook();
  installPeerHook(); // Next.js may evaluate instrumentation more than once: still one hook.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('the peer is appended once, after whatever the client sent', async () => {
  seen.length = 0;
  await rawRequest(origin, { path: '/' });
  await rawRequest(origin, { path: '/', headers: [['X-Forwarded-For', '1.2.3.4']] });
  await rawRequest(origin, { path: '/', headers: [['X-Forwarded-For', '1.2.3.4'], ['X-Forwarded-For', '5.6.7.8']] });
  assert.deepEqual(seen, [
    { header: '127.0.0.1', again: '127.0.0.1' },
    { header: '1.2.3.4, 127.0.0.1', again: '1.2.3.4, 127.0.0.1' },
    { header: '1.2.3.4, 5.6.7.8, 127.0.0.1', again: '1.2.3.4, 5.6.7.8, 127.0.0.1' },
  ]);
  for (const { header } of seen) {
    const request = new Request(origin, { headers: { 'x-forwarded-for': header ?? '' } });
    assert.equal(clientAddress(request, { trustedProxyHops: 0 }), '127.0.0.1', 'a forged entry never becomes the address');
  }
});
