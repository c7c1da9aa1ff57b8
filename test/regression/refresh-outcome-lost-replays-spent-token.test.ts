/**
 * What broke (AUDIT L13): the token request reached the provider, which rotated the
 * refresh token, but the answer was lost (a timeout or a reset after sending, a crash).
 * The broker answered 503 "session kept", and the next request sent the spent refresh
 * token again — the provider's reuse detection then revoked the whole grant. Now an
 * outcome that is unknown after sending is never replayed: the session ends cleanly
 * (401 session_expired, cookie cleared, the old token revoked best-effort), while a
 * failure before sending or a 5xx answer still keeps the session (503 idp_unavailable,
 * covered in test/integration/tokens/refresh-concurrency.test.ts). And the refreshed ID
 * token's `sub` was never compared with the session's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getConfig } from '../../lib/config/load.ts';
import { seal } from '../../lib/session/codec.ts';
import type { Session } from '../../lib/session/session.ts';
import { callWith, sleep } from '../helpers/calls.ts';
import { unsealSession } from '../helpers/core.ts';
import { startGatedStack, type GatedStack, type ProviderGate } from '../helpers/provider-gate.ts';
import type { Stack } from '../helpers/stack.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

let gated: GatedStack;
let gate: ProviderGate;
let stack: Stack;
let up: TestUpstream;
before(async () => {
  gated = await startGatedStack();
  ({ gate, stack, up } = gated);
});
after(() => gated?.close());

test('a refresh answer lost after the provider rotated ends the session instead of replaying the spent token', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const cookie = browser.cookieHeader();
  await sleep(2_300);
  stack.idp.resetStats();

  gate.dropTokenAnswers = 1;
  const lost = await callWith(stack.broker.url, '/api/up/x', cookie);
  assert.equal(stack.idp.stats.refreshGrants, 1, 'the provider did rotate');
  assert.equal(lost.status, 401, `got ${lost.status} ${JSON.stringify(lost.body)}`);
  assert.equal(lost.body.error, 'session_expired');
  assert.ok(lost.cleared, 'the cookie is cleared');

  const again = await callWith(stack.broker.url, '/api/up/y', cookie);
  assert.equal(again.status, 401, 'the session is over for every copy');
  const refreshes = stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token');
  assert.equal(refreshes.length, 1, 'the spent refresh token was never sent again');
  assert.deepEqual(up.records, [], 'the API saw nothing');
});

test('a refreshed ID token naming another user is refused and ends the session (OpenID Connect Core §12.2)', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  // A session whose subject differs from what the provider will say on refresh: sealed
  // by the test with the broker's own secret, as only the broker could.
  const config = getConfig();
  const session = (await unsealSession(browser.cookieHeader())) as Session;
  const forged = await seal({ ...session, sub: 'user-mallory' }, config.session, 3600);
  await sleep(2_300);
  stack.idp.resetStats();

  const refused = await callWith(stack.broker.url, '/api/up/x', `cloakroom=${forged}`);
  assert.equal(stack.idp.stats.refreshGrants, 1, 'the provider answered the refresh');
  assert.equal(refused.status, 401, `got ${refused.status} ${JSON.stringify(refused.body)}`);
  assert.equal(refused.body.error, 'session_expired');
  assert.ok(refused.cleared);
  assert.deepEqual(up.records, [], 'the API never saw a token of the other user');
});
