/**
 * What broke (AUDIT M5): the cross-instance refresh lock had a fixed TTL, no renewal,
 * no fencing and an unconditional release. A refresh slower than the TTL let a second
 * instance take the lock and send the same refresh token again — with rotation the
 * provider takes that for theft and revokes the grant — and the first holder's release
 * then deleted the second one's lock. Now the lock is a short lease renewed while the
 * refresh runs, released only by its owner; the record is re-read under it and written
 * with a compare-and-set.
 *
 * Two broker instances share ONE store (test/helpers/instances.ts: one store client
 * each, so each has its own in-process single-flight), against the real rotating
 * provider behind a gate that can hold the token endpoint's answer back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { answerOf, sleep } from '../helpers/calls.ts';
import { brokerInstance } from '../helpers/instances.ts';
import { startGatedStack, type GatedStack, type ProviderGate } from '../helpers/provider-gate.ts';
import type { Stack } from '../helpers/stack.ts';

const UNTIL_STALE_MS = 2_300;
/** Beyond the lock's 5 s lease (lib/tokens/manager.ts), within the provider timeout (10 s). */
const SLOW_TOKEN_ANSWER_MS = 6_500;
let gated: GatedStack;
let gate: ProviderGate;
let stack: Stack;
before(async () => {
  gated = await startGatedStack();
  ({ gate, stack } = gated);
});
after(() => gated?.close());

const refreshRequests = () => stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token');

async function storm(cookie: string, perInstance: number): Promise<number[]> {
  const a = brokerInstance(stack.store);
  const b = brokerInstance(stack.store);
  const first = Array.from({ length: perInstance }, (_, i) => a.api(`/api/up/a/${i}`, cookie));
  await sleep(50); // instance A holds the lock when B's requests arrive
  const second = Array.from({ length: perInstance }, (_, i) => b.api(`/api/up/b/${i}`, cookie));
  const answers = await Promise.all([...first, ...second].map(async (r) => answerOf(await r)));
  return answers.map((x) => x.status);
}

test('a refresh storm split across two instances makes exactly one grant and every call succeeds', async () => {
  stack.configure({});
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  await sleep(UNTIL_STALE_MS);
  stack.idp.resetStats();

  const statuses = await storm(browser.cookieHeader(), 25);
  assert.deepEqual(statuses, Array(50).fill(200));
  assert.equal(refreshRequests().length, 1, 'one refresh request reached the provider');
  assert.equal(stack.idp.stats.grantsRevoked, 0);
});

test('a provider slower than the lock lease: the lease is renewed, no second instance sends the token again', async () => {
  stack.configure({});
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  await sleep(UNTIL_STALE_MS);
  stack.idp.resetStats();

  gate.tokenDelayMs = SLOW_TOKEN_ANSWER_MS;
  let statuses: number[];
  try {
    statuses = await storm(browser.cookieHeader(), 5);
  } finally {
    gate.tokenDelayMs = 0;
  }
  assert.deepEqual(statuses, Array(10).fill(200));
  assert.equal(refreshRequests().length, 1, 'the refresh token was sent once');
  assert.equal(stack.idp.stats.grantsRevoked, 0, 'no reuse detected at the provider');
});
