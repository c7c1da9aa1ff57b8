/**
 * The providers quirks matrix (see quirks.test.ts), part 2: refresh. A dead refresh
 * token in every shape providers refuse it (invalid_grant, an empty 400, a JSON body
 * without `error`, invalid_request) ends the session; a refused client (invalid_client,
 * a bare `WWW-Authenticate: Basic`) keeps it and tells the operator; non-rotating
 * providers and refresh answers without a refresh token.
 *
 * [B]: passes once helper B's token-manager work (issue 13 point 7) is merged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { providerHealth } from '../../../lib/oidc/provider.ts';
import { sessionOf, sleep, unsealSession } from '../../helpers/core.ts';
import type { QuirkStack } from '../../helpers/quirk-provider.ts';
import type { BrowserClient } from '../../helpers/stack.ts';
import { contractHolds, group, logsOf, signedIn, UNTIL_STALE_MS, withQuirks } from '../../helpers/quirk-contract.ts';


group('a refresh token that does not rotate, and refresh answers without one', { idp: { rotateRefreshTokens: false } }, (get) => {
  test('refresh answers carry no refresh token: the one in hand is kept', async () => {
    withQuirks(get(), { refreshWithoutRefreshToken: true });
    // A grace window shorter than the token's renewal point keeps this test about the
    // missing refresh token alone; the [B] test below is about the longer window.
    get().configure({ REFRESH_GRACE_PERIOD: '1' });
    await contractHolds(get());
  });
  test('[B] access tokens shorter than the grace window: every call past the renewal point refreshes, none answers 503', async () => {
    withQuirks(get(), { refreshWithoutRefreshToken: true });
    // 2 s tokens, renewed after 1 s, with the default 30 s grace window.
    const browser = await signedIn(get());
    for (let call = 1; call <= 4; call++) {
      await sleep(UNTIL_STALE_MS);
      const answer = await browser.api('/api/echo/x');
      assert.equal(answer.status, 200, `call ${call} answered ${answer.status}: ${await answer.clone().text()}`);
    }
  });
});

group('dead refresh tokens and refused clients, in the shapes providers send', {}, (get) => {
  /** Signs in, lets the provider forget the refresh token, and makes the next call refresh. */
  async function withDeadRefreshToken(stack: QuirkStack): Promise<BrowserClient> {
    const browser = await signedIn(stack);
    const refreshToken = (await unsealSession(browser.cookieHeader()))?.refreshToken as string;
    await (await stack.idp.provider.RefreshToken.find(refreshToken))?.destroy();
    await sleep(UNTIL_STALE_MS);
    return browser;
  }

  for (const shape of [undefined, 'empty_400', 'json_without_error', 'invalid_request'] as const) {
    test(`a dead refresh token answered ${shape ?? 'invalid_grant'}: 401 session_expired, cookie cleared, never sent again`, async () => {
      const stack = get();
      withQuirks(stack, { deadRefreshToken: shape });
      const browser = await withDeadRefreshToken(stack);
      stack.idp.resetStats();
      const answer = await browser.api('/api/echo/x');
      assert.equal(answer.status, 401);
      assert.equal(((await answer.json()) as { error: string }).error, 'session_expired');
      assert.ok(answer.headers.getSetCookie().some((c) => /^cloakroom=;|Max-Age=0/.test(c)), 'the session cookie is cleared');
      assert.deepEqual(await sessionOf(browser), { authenticated: false });
      assert.equal((await browser.api('/api/echo/x')).status, 401);
      assert.equal(stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'refresh_token').length, 1, 'the dead token went to the provider once');
    });
  }

  for (const shape of [undefined, 'invalid_client_without_challenge', 'bare_basic_challenge'] as const) {
    test(`a refused client (${shape ?? "oidc-provider's own 401"}): 503 idp_unavailable, session kept, the operator told what to fix`, async () => {
      const stack = get();
      withQuirks(stack, { clientRefused: shape });
      const browser = await signedIn(stack);
      stack.configure({ OIDC_CLIENT_SECRET: 'a-wrong-secret-that-the-provider-refuses' });
      await sleep(UNTIL_STALE_MS);
      const lines = await logsOf(async () => {
        const answer = await browser.api('/api/echo/x');
        assert.equal(answer.status, 503);
        assert.equal(((await answer.json()) as { error: string }).error, 'idp_unavailable');
        assert.equal(answer.headers.getSetCookie().length, 0, 'no cookie is cleared');
      });
      const told = lines.find((l) => l.event === 'idp_client_rejected');
      assert.ok(told, 'an idp_client_rejected line');
      assert.match(String(told.problem), /OIDC_CLIENT_ID \/ OIDC_CLIENT_SECRET \/ OIDC_CLIENT_AUTH/);
      assert.equal(providerHealth().status, 'misconfigured');

      // The operator fixes the secret: the same session works again.
      stack.configure({});
      const fixed = await browser.api('/api/echo/x');
      assert.equal(fixed.status, 200);
      assert.equal(providerHealth().status, 'ok');
    });
  }
});

