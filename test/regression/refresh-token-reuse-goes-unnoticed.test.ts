/**
 * What broke (AUDIT M4): a spent refresh token presented after its successor had been
 * used — two holders of one session, e.g. a thief with a copy of the cookie who
 * refreshed first — was answered `session_expired` quietly, for that request alone. No
 * security event, no metric, and no way to cut the thief off: RFC 9700 §4.14.2 theft
 * detection never fired. Now it is a `refresh_token_reuse` event and
 * `cloakroom_refresh_token_reuse_total`; with SESSION_ANOMALY_POLICY=end the whole
 * session ends on every instance and its live refresh token is revoked at the provider.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metrics } from '../../lib/ops/metrics.ts';
import { callWith, sleep, tokenEndpoint } from '../helpers/calls.ts';
import { startGatedStack, type GatedStack, type ProviderGate } from '../helpers/provider-gate.ts';
import { CLIENT_ID, type Stack } from '../helpers/stack.ts';

const UNTIL_STALE_MS = 2_300;
let gated: GatedStack;
let gate: ProviderGate;
let stack: Stack;
before(async () => {
  gated = await startGatedStack();
  ({ gate, stack } = gated);
});
after(() => gated?.close());

const reuseCount = async () => (await metrics.refreshTokenReuse.get()).values[0]?.value ?? 0;

/**
 * The victim's cookie is copied; the thief refreshes twice (moving past the copy's
 * successor) and the victim comes back after the grace window with the original.
 */
async function theftScenario(): Promise<{ victim: string; thief: string }> {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  const victim = browser.cookieHeader();
  await sleep(UNTIL_STALE_MS);
  const first = await callWith(stack.broker.url, '/api/up/thief-1', victim);
  assert.equal(first.status, 200);
  await sleep(UNTIL_STALE_MS);
  const second = await callWith(stack.broker.url, '/api/up/thief-2', first.newCookie as string);
  assert.equal(second.status, 200);
  assert.ok(second.newCookie);
  await sleep(1_300); // past REFRESH_GRACE_PERIOD=1
  return { victim, thief: second.newCookie as string };
}

describe('SESSION_ANOMALY_POLICY=log (default)', () => {
  test('a security event and the metric; this request alone is refused, the live holder keeps working', async () => {
    stack.configure({ REFRESH_GRACE_PERIOD: '1', SESSION_ANOMALY_POLICY: 'log' });
    const { victim, thief } = await theftScenario();
    const before = await reuseCount();
    const refreshesBefore = stack.idp.stats.refreshGrants;

    const stale = await callWith(stack.broker.url, '/api/up/victim', victim);
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error, 'session_expired');
    assert.deepEqual(stale.setCookies, [], 'the cookie is not touched');
    assert.equal(await reuseCount(), before + 1, 'cloakroom_refresh_token_reuse_total counts it');
    assert.equal(stack.idp.stats.refreshGrants, refreshesBefore, 'the spent token is never sent');

    const session = await callWith(stack.broker.url, '/auth/session', victim);
    assert.equal(session.body.authenticated, false, '/auth/session reports what the proxy enforces');
    assert.deepEqual(session.setCookies, []);

    const live = await callWith(stack.broker.url, '/api/up/live', thief);
    assert.equal(live.status, 200, 'the live holder keeps working');
    assert.equal(stack.idp.stats.grantsRevoked, 0);
  });
});

describe('SESSION_ANOMALY_POLICY=end', () => {
  test('the whole session ends — the newer copy too — and its live refresh token is revoked at the provider', async () => {
    stack.configure({ REFRESH_GRACE_PERIOD: '1', SESSION_ANOMALY_POLICY: 'end' });
    gate.issuedRefreshTokens.length = 0;
    const { victim, thief } = await theftScenario();
    const live = gate.issuedRefreshTokens.at(-1) as string;
    const before = await reuseCount();

    const stale = await callWith(stack.broker.url, '/api/up/victim', victim);
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error, 'session_expired');
    assert.ok(stale.cleared, 'the cookie is cleared');
    assert.equal(await reuseCount(), before + 1);

    const cutOff = await callWith(stack.broker.url, '/api/up/thief-3', thief);
    assert.equal(cutOff.status, 401, 'the copy that refreshed first is cut off too');
    assert.ok(gate.revokedTokens.includes(live), 'the live refresh token was sent for revocation (RFC 7009)');
    const replay = await tokenEndpoint(stack.idp.issuer, CLIENT_ID, stack.clientSecret, { grant_type: 'refresh_token', refresh_token: live });
    assert.equal(replay.body.error, 'invalid_grant', 'the provider no longer honours it');
  });
});
