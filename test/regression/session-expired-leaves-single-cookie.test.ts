/**
 * Issue 9, defect 3: after the provider revoked the grant, the call that got
 * `401 session_expired` expired `cloakroom.0` and `cloakroom.1` but not `cloakroom`, and
 * the browser, which held the session in the single cookie by then, kept sending it.
 * The cause: the answer expired only the names that its own request carried. A request
 * is sent with the cookies of its moment; another answer may have changed the family
 * (chunked ⇄ single) while it was on its way. Clearing now expires every name of the
 * family the browser may hold.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CLIENT_ID, startStack, type Stack } from '../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { sleep, unsealSession } from '../helpers/core.ts';

let stack: Stack;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    idp: { accessTokenTtl: 4 },
    env: { BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: `${up.url}/v1`, auth: 'required' }]) },
  });
});
after(async () => {
  await stack?.close();
  await up?.close();
});

test('401 session_expired expires the single session cookie too, when the request carried chunks', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const sealed = browser.cookie('cloakroom');
  assert.ok(sealed, 'the session is held in the single cookie');
  const session = await unsealSession(browser.cookieHeader());
  assert.ok(session?.refreshToken);

  // The provider revokes the grant (RFC 7009, as an administrator or a reuse detection would).
  const metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  const revoked = await fetch(metadata.revocation_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${stack.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token: session.refreshToken, token_type_hint: 'refresh_token' }),
  });
  assert.equal(revoked.status, 200);
  await sleep(2_300); // past the access token's renewal point (half of 4 s)

  // A request that left while the browser still held the family as two chunks.
  const half = Math.ceil(sealed.length / 2);
  const inFlight = `cloakroom.0=${sealed.slice(0, half)}; cloakroom.1=${sealed.slice(half)}`;
  const response = await fetch(`${stack.broker.url}/api/up/x`, { headers: { 'x-csrf': '1', 'sec-fetch-site': 'same-origin', cookie: inFlight } });
  assert.equal(response.status, 401);
  assert.equal(((await response.json()) as { error: string }).error, 'session_expired');
  const expired = response.headers
    .getSetCookie()
    .filter((h) => /; Max-Age=0(;|$)/.test(h))
    .map((h) => h.slice(0, h.indexOf('=')));
  for (const name of ['cloakroom', 'cloakroom.0', 'cloakroom.1']) assert.ok(expired.includes(name), `${name} is expired (got ${expired.join(', ')})`);

  // The browser's own copy (the single cookie) is dropped with it.
  browser.jar.store(new URL(stack.broker.url), new Response(null, { headers: response.headers }));
  assert.equal(browser.cookie('cloakroom'), undefined);
  assert.deepEqual(up.records, [], 'the API saw nothing');
});
