/**
 * Issue 13, point 10: without an RFC 7009 revocation endpoint, logout silently skipped
 * revocation, while an offline refresh token may outlive the provider's own logout. The
 * logout still ends the session here, and a log line now says revocation was not
 * possible and what to do about it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sessionOf } from '../helpers/core.ts';
import { logsOf, signedIn } from '../helpers/quirk-contract.ts';
import { startQuirkStack, type QuirkStack } from '../helpers/quirk-provider.ts';

let stack: QuirkStack;
before(async () => {
  stack = await startQuirkStack({ quirks: { noRevocationEndpoint: true } });
});
after(() => stack?.close());

test('logout without a revocation endpoint logs that the refresh token could not be revoked', async () => {
  const browser = await signedIn(stack);
  const lines = await logsOf(async () => {
    const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
    assert.equal(logout.status, 303);
  });
  const line = lines.find((l) => l.event === 'revocation_unsupported');
  assert.ok(line, `a revocation_unsupported line among ${lines.map((l) => l.event).join(', ')}`);
  assert.equal(line.level, 'warn');
  assert.match(String(line.problem), /RFC 7009/);
  assert.match(String(line.problem), /offline_access/);
  assert.deepEqual(await sessionOf(browser), { authenticated: false });
});
