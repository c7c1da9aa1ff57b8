/**
 * What broke (AUDIT L1): logout revoked the refresh token of the presented cookie. When
 * an API call had rotated it and its answer never reached the browser (or was still in
 * flight), that token was already spent, and the live successor stayed valid at the
 * provider (with Keycloak offline tokens, for weeks). Logout now revokes the session
 * record's live refresh token too.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { callWith, sleep } from '../helpers/calls.ts';
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

test('logout after a refresh whose answer was lost revokes the live refresh token', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const cookie = browser.cookieHeader();
  await sleep(2_300);

  const controller = new AbortController();
  const abandoned = callWith(stack.broker.url, '/api/up/hang', cookie, { signal: controller.signal }).catch(() => 'aborted');
  await up.waitFor((r) => r.url === '/hang', 5_000);
  controller.abort();
  await abandoned;
  const [, live] = gate.issuedRefreshTokens;
  assert.ok(live, 'the call rotated the refresh token');

  const logout = await callWith(stack.broker.url, '/auth/logout', cookie, { method: 'POST', headers: { origin: stack.broker.url } });
  assert.equal(logout.status, 303);
  assert.ok(gate.revokedTokens.includes(live), 'the live refresh token was sent for revocation (RFC 7009)');
});
