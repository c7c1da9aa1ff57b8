/**
 * Issue 9, from a black-box run against the product: `npm start` handed every request to
 * Next.js's route runtime, which rebuilt the URL — `?x=1&y=%20z&x=2&empty=` reached the API
 * as `x=1&x=2&y=+z&empty=`, breaking signed URLs and order-sensitive APIs — and answered
 * `TRACE /api/...` with a bare 500 before any broker code ran. Through the front door
 * (server/front-door.ts) the query arrives as sent and TRACE is the contract's 405.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { rawRequest, rawSocketRequest } from '../helpers/raw-http.ts';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

let stack: ProductionStack;
let upstream: TestUpstream;

before(async () => {
  upstream = await startUpstream();
  const routes = [{ path: '/api/open', upstream: upstream.url, auth: 'none', methods: ['GET'] }];
  stack = await startProductionStack({ npmStart: true, env: { BFF_ROUTES: JSON.stringify(routes) } });
});
after(async () => {
  await stack?.close();
  await upstream?.close();
});

test('the query of the report reaches the API as sent, not reordered or re-encoded', async () => {
  upstream.reset();
  const answer = await rawRequest(stack.url, { path: '/api/open/echo?x=1&y=%20z&x=2&empty=', headers: [['X-CSRF', '1']] });
  assert.equal(answer.status, 200);
  assert.equal(upstream.records[0]?.url, '/echo?x=1&y=%20z&x=2&empty=');
});

test('TRACE on /api is 405 with Allow, not a 500, and never reaches the API', async () => {
  upstream.reset();
  const answer = await rawSocketRequest(stack.port, `TRACE /api/open/echo HTTP/1.1\r\nHost: localhost:${stack.port}\r\nX-CSRF: 1`);
  assert.equal(answer.status, 405, answer.text);
  assert.match(answer.text, /\r\nallow: /i);
  assert.match(answer.text, /\{"error":"method_not_allowed"\}$/);
  assert.equal(upstream.records.length, 0);
});
