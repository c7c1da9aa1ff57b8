/**
 * Issue 13, point 8: a provider answers an unknown refresh token with `invalid_request`
 * (not `invalid_grant`, RFC 6749 §5.2). The broker read it as an outage: 503 on every
 * call, the dead token replayed forever. Like any other 4xx, it means the grant is gone.
 * A JSON body without `error` at all is the same case.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sessionOf, sleep, unsealSession } from '../helpers/core.ts';
import { signedIn, UNTIL_STALE_MS, withQuirks } from '../helpers/quirk-contract.ts';
import { startQuirkStack, type QuirkStack } from '../helpers/quirk-provider.ts';

let stack: QuirkStack;
before(async () => {
  stack = await startQuirkStack();
});
after(() => stack?.close());

for (const shape of ['invalid_request', 'json_without_error'] as const) {
  test(`${shape} for a dead refresh token: 401 session_expired, the cookie cleared`, async () => {
    withQuirks(stack, { deadRefreshToken: shape });
    const browser = await signedIn(stack);
    const refreshToken = (await unsealSession(browser.cookieHeader()))?.refreshToken as string;
    await (await stack.idp.provider.RefreshToken.find(refreshToken))?.destroy();
    await sleep(UNTIL_STALE_MS);

    const answer = await browser.api('/api/echo/x');
    assert.equal(answer.status, 401);
    assert.equal(((await answer.json()) as { error: string }).error, 'session_expired');
    assert.ok(answer.headers.getSetCookie().some((c) => /^cloakroom=;|Max-Age=0/.test(c)), 'the cookie is cleared');
    assert.deepEqual(await sessionOf(browser), { authenticated: false });
  });
}
