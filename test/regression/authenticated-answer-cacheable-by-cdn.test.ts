/**
 * What broke (M7), through the production server (`next start`): an API answering a
 * bearer-authenticated request with `Cache-Control: public, s-maxage=300` and CDN cache
 * headers is safe for the API — RFC 9111 §3.5 keeps shared caches from reusing answers
 * to requests with `Authorization` — but the browser's request to the broker carries
 * only a `Cookie`, which §3.5 does not protect. The headers reached the browser side
 * unchanged, so a CDN or reverse-proxy cache in front of the broker (Vercel's edge
 * honours `s-maxage` and `CDN-Cache-Control`) could keep user A's answer and serve it to
 * user B. Answers obtained with a user's token now leave private, with `Vary: Cookie`
 * and no CDN cache header; anonymous answers are left as the API sent them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';
import { BrowserClient } from '../helpers/stack.ts';
import { encodeHeaderList, startUpstream, type TestUpstream } from '../helpers/upstream.ts';

type Pair = [string, string];
const { sharedCacheHeaders } = JSON.parse(readFileSync(new URL('../fixtures/header-payloads.json', import.meta.url), 'utf8')) as {
  sharedCacheHeaders: Pair[];
};
const API_ANSWER: Pair[] = [['Cache-Control', 'public, s-maxage=300, max-age=60'], ['Vary', 'Accept'], ...sharedCacheHeaders];

let stack: ProductionStack;
let up: TestUpstream;
let alice: BrowserClient;

before(async () => {
  up = await startUpstream();
  stack = await startProductionStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/mine', upstream: up.url, auth: 'required' },
        { path: '/api/open', upstream: up.url, auth: 'none' },
      ]),
    },
  });
  alice = new BrowserClient(stack.url);
  assert.equal((await alice.signIn('alice', 'alice-password')).status, 303);
});

after(async () => {
  await stack?.close();
  await up?.close();
});

const vary = (response: Response) => (response.headers.get('vary') ?? '').split(',').map((v) => v.trim().toLowerCase());

test('an answer obtained with the user token reaches the browser private, with Vary: Cookie and no CDN cache header', async () => {
  const response = await alice.api(`/api/mine/respond?headers=${encodeHeaderList(API_ANSWER)}&body=alice-data`);
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'alice-data');
  assert.equal(response.headers.get('cache-control'), 'private, max-age=60');
  assert.ok(vary(response).includes('cookie'), `Vary: ${response.headers.get('vary')}`);
  assert.ok(vary(response).includes('accept'), "the API's own Vary is kept");
  for (const [name] of sharedCacheHeaders) assert.equal(response.headers.get(name), null, `${name} reached the browser`);
});

test('an anonymous answer keeps the API its own caching instructions', async () => {
  const response = await new BrowserClient(stack.url).api(`/api/open/respond?headers=${encodeHeaderList(API_ANSWER)}&body=public-data`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('cache-control'), 'public, s-maxage=300, max-age=60');
  assert.equal(response.headers.get('cdn-cache-control'), 'public, max-age=600');
  await response.body?.cancel();
});
