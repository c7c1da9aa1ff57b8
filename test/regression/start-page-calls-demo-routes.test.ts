/**
 * Issue 13, point 5: the start page's buttons called the demo's fixed `/api/demo/whoami`
 * and `/api/reports/summary`, which answer 404 under any other route table. Through the
 * real production server: the page shows one button per configured GET route, by path
 * only — no upstream URL or other internals reach the page.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

let stack: ProductionStack;
let upstream: TestUpstream;

before(async () => {
  upstream = await startUpstream();
  stack = await startProductionStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/orders', upstream: `${upstream.url}/internal-v1`, auth: 'required', methods: ['GET'] },
        { path: '/api/admin/jobs', upstream: `${upstream.url}/jobs`, auth: 'required', methods: ['POST'] },
      ]),
    },
  });
});
after(async () => {
  await stack?.close();
  await upstream?.close();
});

test('the start page offers the configured GET routes by path, and nothing of the upstreams', async () => {
  const response = await fetch(`${stack.url}/`);
  assert.equal(response.status, 200);
  const html = await response.text();
  assert.match(html, /data-testid="call-orders"/);
  assert.match(html, /Call (<!-- -->)?\/api\/orders/);
  assert.doesNotMatch(html, /\/api\/demo|\/api\/reports/, 'no demo route the table does not have');
  assert.doesNotMatch(html, /\/api\/admin\/jobs/, 'a POST-only route gets no GET button');
  assert.doesNotMatch(html, /internal-v1|127\.0\.0\.1|localhost:\d+\/jobs/, 'no upstream URL reaches the page');
});
