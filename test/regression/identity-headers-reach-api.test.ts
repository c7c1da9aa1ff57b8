/**
 * What broke (M9): request headers towards the API were filtered by a deny-list, so
 * headers that auth proxies and platforms use to assert who the user is
 * (`X-Auth-Request-User`, `Remote-User`, `X-Amzn-Oidc-*`, `X-Ms-Client-Principal*`,
 * `X-Goog-Authenticated-User-*`, `GAP-Auth`…) and that service meshes obey
 * (`x-envoy-*`, `X-Original-*`, `X-Host`, `Via`…) reached the API beside the broker's
 * bearer token — sent by the browser, or by any XSS calling through the broker. Headers
 * now pass by allow-list, and these never, even when a route lists them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startStack, type BrowserClient, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

type Pair = [string, string];
const payloads = JSON.parse(readFileSync(new URL('../fixtures/header-payloads.json', import.meta.url), 'utf8')) as { neverToUpstream: Pair[] };
/** The identity-assertion and mesh-control families (framing and broker-set headers are tested elsewhere). */
const FORGED = payloads.neverToUpstream.filter(([name]) =>
  /^(x-auth-request-|gap-auth|remote-user|x-remote-|x-authenticated-|x-consumer-|x-amzn-oidc-|x-ms-|x-goog-|x-apigateway-|cf-access-|x-pomerium-|x-envoy-|x-original-|x-host$|via$|l5d-|x-forwarded-user|x-forwarded-email|x-forwarded-groups|x-forwarded-access-token)/i.test(name),
);

let stack: Stack;
let up: TestUpstream;
let alice: BrowserClient;

before(async () => {
  up = await startUpstream();
  stack = await startStack({ env: { BFF_ROUTES: JSON.stringify([{ path: '/api/orders', upstream: up.url, auth: 'required' }]) } });
  alice = stack.newBrowser();
  assert.equal((await alice.signIn('alice')).status, 303);
});

after(async () => {
  await stack?.close();
  await up?.close();
});

test('no forged identity or mesh-control header reaches the API', async () => {
  assert.ok(FORGED.length >= 30, `the fixture holds the families (${FORGED.length})`);
  up.reset();
  const answer = await rawRequest(stack.broker.url, {
    path: '/api/orders/echo',
    headers: [['X-CSRF', '1'], ['Sec-Fetch-Site', 'same-origin'], ['Cookie', alice.cookieHeader()], ...FORGED],
  });
  assert.equal(answer.status, 200, answer.body.toString());
  const [record] = up.records;
  assert.ok(record?.bearer, 'the broker token was sent');
  const arrived = FORGED.filter(([name]) => record.headers[name.toLowerCase()] !== undefined).map(([name]) => name);
  assert.deepEqual(arrived, [], `reached the API: ${arrived.join(', ')}`);
});

test('a route cannot list them in forwardHeaders', () => {
  for (const [name] of FORGED) {
    try {
      loadConfig({
        APP_BASE_URL: 'https://app.example.com',
        OIDC_ISSUER: 'https://id.example.com',
        OIDC_CLIENT_ID: 'c',
        OIDC_CLIENT_SECRET: 's',
        SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
        BFF_ROUTES: JSON.stringify([{ path: '/api/orders', upstream: 'https://orders.internal', forwardHeaders: [name] }]),
      });
      assert.fail(`${name} was accepted in forwardHeaders`);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.problems.join('\n'), /may never be forwarded/, name);
    }
  }
});
