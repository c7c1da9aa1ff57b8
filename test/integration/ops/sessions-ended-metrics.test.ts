/**
 * `cloakroom_sessions_ended_total{reason}` counted where each end happens (CONTRACT.md,
 * "Metrics"), against the real oidc-provider: a back-channel logout counts the sessions it
 * ends (by sid, by sub), an idle session counts once when it is next presented however
 * often, and a refresh token the provider no longer honours ends its session as `expired`.
 * (logout: test/integration/oidc/logout.test.ts; revoked: the session-list tests;
 * anomaly: session-anomaly.test.ts and the Prometheus e2e.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metrics } from '../../../lib/ops/metrics.ts';
import { sessionOf, sleep, unsealSession } from '../../helpers/core.ts';
import { providerSigningKey, postLogoutToken, signLogoutToken } from '../../helpers/logout-tokens.ts';
import { tokenEndpoint } from '../../helpers/calls.ts';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const RESOURCE = 'https://up.example/';
const ended = async (reason: string) => (await metrics.sessionsEnded.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

let stack: Stack;
let up: TestUpstream;
let key: Awaited<ReturnType<typeof providerSigningKey>>;
before(async () => {
  key = await providerSigningKey();
  up = await startUpstream();
  stack = await startStack({ idp: { jwks: { keys: [key] }, resources: { [RESOURCE]: { scope: 'up:read' } } } });
});
after(async () => {
  await stack?.close();
  await up?.close();
});

function configure(env: Record<string, string> = {}) {
  stack.configure({ BFF_ROUTES: JSON.stringify([{ path: '/api/up', upstream: up.url, auth: 'required', resource: RESOURCE, scopes: ['up:read'] }]), ...env });
}

async function signedIn(): Promise<BrowserClient> {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  return browser;
}

describe('back-channel logout', () => {
  test('by sid: the one session of that provider session counts once', async () => {
    configure();
    const browser = await signedIn();
    const other = await signedIn();
    const session = await unsealSession(browser.cookieHeader());
    assert.ok(session?.idpSid);
    const before = await ended('backchannel');
    const token = await signLogoutToken(key, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sid: session.idpSid });
    assert.equal(await postLogoutToken(stack.broker.url, token), 200);
    assert.equal(await ended('backchannel'), before + 1);
    assert.equal((await sessionOf(browser)).authenticated, false);
    assert.equal((await sessionOf(other)).authenticated, true, 'the other provider session lives');
  });

  test('by sub: every live session of the user counts', async () => {
    configure();
    const sessions = [await signedIn(), await signedIn(), await signedIn()];
    const sub = (await unsealSession(sessions[0].cookieHeader()))?.sub as string;
    const before = await ended('backchannel');
    const token = await signLogoutToken(key, { issuer: stack.idp.issuer, audience: CLIENT_ID }, { sub });
    assert.equal(await postLogoutToken(stack.broker.url, token), 200);
    assert.equal(await ended('backchannel'), before + 3);
    for (const browser of sessions) assert.equal((await sessionOf(browser)).authenticated, false);
  });
});

test('idle: a lapsed session counts once when it is next presented, however many requests present it', async () => {
  configure({ SESSION_IDLE_TIMEOUT: '1' });
  const browser = await signedIn();
  const cookie = browser.cookieHeader();
  const before = await ended('idle');
  await sleep(1_500);
  for (let i = 0; i < 3; i++) assert.equal((await sessionOf(browser, cookie)).authenticated, false);
  // Counted off the request's path: give the store's answer a moment.
  await sleep(50);
  assert.equal(await ended('idle'), before + 1);
});

test('expired: the provider no longer honours the refresh token — 401 session_expired, counted once', async () => {
  configure();
  const browser = await signedIn();
  const session = await unsealSession(browser.cookieHeader());
  const revoked = await tokenEndpoint(stack.idp.issuer, CLIENT_ID, stack.clientSecret, { token: session?.refreshToken as string, token_type_hint: 'refresh_token' }, '/token/revocation');
  assert.equal(revoked.status, 200);
  const before = await ended('expired');
  const answer = await browser.api('/api/up/x');
  assert.equal(answer.status, 401);
  assert.equal(((await answer.json()) as { error: string }).error, 'session_expired');
  assert.equal(await ended('expired'), before + 1);
});
