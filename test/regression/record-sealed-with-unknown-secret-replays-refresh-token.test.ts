/**
 * What broke: mid-rotation of SESSION_SECRETS, an instance already sealing with the new
 * secret wrote the refresh record (the successor refresh token) under every key. An
 * instance that did not have the new secret yet found the record but could not open it,
 * read that as "no record", took the cookie's spent refresh token for the current one
 * and sent it: the rotating provider saw a replay and revoked the grant, signing the
 * user out everywhere. Now a record that is present but unreadable fails the request
 * with 503 store_unavailable (the session kept) and nothing is sent to the provider.
 *
 * Also: the refresh lock was taken on the "canonical" key (the lowest secret id), which
 * differs between two instances holding different sets of secrets; it now spans every
 * secret's key (test/unit/tokens/lock.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../lib/config/load.ts';
import { handleProxy } from '../../lib/proxy/handler.ts';
import { answerOf, sleep } from '../helpers/calls.ts';
import { StoreClient } from '../helpers/instances.ts';
import { startGatedStack, type GatedStack } from '../helpers/provider-gate.ts';
import type { Stack } from '../helpers/stack.ts';

const UNTIL_STALE_MS = 2_300;
const NEW_SECRET = 'Vb7tK2qLm9XcR4wZp8NfJ3sHd6YgA1eU5oTi0LkWz2Q';
let gated: GatedStack;
let stack: Stack;
before(async () => {
  gated = await startGatedStack();
  ({ stack } = gated);
});
after(() => gated?.close());

test('an instance without the newest secret answers 503 on a record sealed with it, and never replays the spent refresh token', async () => {
  stack.configure({});
  const oldSecretOnly = loadConfig(process.env);
  // The instance already rotated: the new secret first (it seals), the old one still unseals.
  const rotated = loadConfig({ ...process.env, SESSION_SECRETS: `${NEW_SECRET},${process.env.SESSION_SECRETS}` });
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const cookie = browser.cookieHeader();
  await sleep(UNTIL_STALE_MS);
  stack.idp.resetStats();

  const call = (config: typeof rotated, store: StoreClient) =>
    handleProxy(
      new Request(new URL('/api/up/x', config.appOrigin), { headers: { cookie, 'x-csrf': '1', 'sec-fetch-site': 'same-origin' } }),
      config,
      store,
    );
  const refreshed = await answerOf(await call(rotated, new StoreClient(stack.store)));
  assert.equal(refreshed.status, 200, 'the rotated instance refreshes');
  assert.equal(stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token').length, 1);

  // The same cookie (its answer lost, or a parallel request) on the instance that lacks the new secret.
  const behind = await answerOf(await call(oldSecretOnly, new StoreClient(stack.store)));
  assert.equal(behind.status, 503);
  assert.equal(behind.body.error, 'store_unavailable');
  assert.equal(behind.cleared, false, 'the cookie is not cleared');
  assert.equal(stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token').length, 1, 'the spent refresh token was not sent again');
  assert.equal(stack.idp.stats.grantsRevoked, 0, 'the grant survives');

  // Once that instance has the new secret too, the same cookie adopts the successor.
  const caughtUp = await answerOf(await call(rotated, new StoreClient(stack.store)));
  assert.equal(caughtUp.status, 200);
});
