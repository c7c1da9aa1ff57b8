/**
 * The contract scenario the providers quirks matrix runs against each quirk
 * (test/integration/providers/quirks*.test.ts): sign-in, two refreshes, back-channel
 * logout sent by the provider itself, RP-initiated logout with revocation.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { getConfig } from '../../lib/config/load.ts';
import { takeIdTokenHint } from '../../lib/session/storage-hint.ts';
import { sessionOf, sleep, unsealSession } from './core.ts';
import type { BrowserClient } from './stack.ts';
import { CLIENT_ID } from './stack.ts';
import { startQuirkStack, type QuirkStack, type QuirkStackOptions, type Quirks } from './quirk-provider.ts';

/** Past the renewal point of a 2 s access token (1 s after issue), with a margin. */
export const UNTIL_STALE_MS = 1_150;

export interface Expect {
  /** The user's name and email reach `/auth/session`. Default true. */
  claims?: boolean;
  /** Logout revokes the refresh token at the provider. Default true. */
  revocation?: boolean;
}

export async function signedIn(stack: QuirkStack, username = 'alice'): Promise<BrowserClient> {
  const browser = stack.newBrowser();
  const callback = await browser.signIn(username);
  assert.equal(callback.status, 303, `sign-in answered ${callback.status}: ${await callback.clone().text()}`);
  assert.equal(callback.headers.get('location'), `${browser.origin}/`);
  return browser;
}

export async function metadataOf(stack: QuirkStack): Promise<Record<string, unknown>> {
  const base = stack.idp.issuer.replace(/\/$/, '');
  return (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
}

/** The contract, end to end, against whatever the provider is doing right now. */
export async function contractHolds(stack: QuirkStack, expect: Expect = {}): Promise<void> {
  const browser = await signedIn(stack);
  const session = await sessionOf(browser);
  assert.equal(session.authenticated, true);
  const user = session.user as Record<string, unknown>;
  assert.equal(user.sub, 'user-alice');
  if (expect.claims ?? true) {
    assert.equal(user.name, 'Alice Example', 'name reaches /auth/session');
    assert.equal(user.email, 'alice@example.com', 'email reaches /auth/session');
  }

  // Two refreshes in a row: the second proves the first stored a usable refresh token.
  for (let round = 1; round <= 2; round++) {
    await sleep(UNTIL_STALE_MS);
    const refreshes = stack.idp.stats.refreshGrants;
    const answer = await browser.api('/api/echo/x');
    assert.equal(answer.status, 200, `API call ${round} answered ${answer.status}: ${await answer.clone().text()}`);
    assert.equal(stack.idp.stats.refreshGrants, refreshes + 1, `API call ${round} refreshed at the provider`);
    assert.equal(stack.upstream.records.at(-1)?.bearer, true, 'the upstream got a bearer token');
  }

  // Back-channel logout, sent by the provider itself to the broker.
  const other = await signedIn(stack, 'bob');
  const otherSession = await unsealSession(other.cookieHeader());
  assert.ok(otherSession?.idpSid, 'the ID token carried sid');
  const client = (await stack.idp.provider.Client.find(CLIENT_ID)) as unknown as { backchannelLogout(sub: string, sid: string): Promise<void> };
  assert.ok(client);
  // Rejects unless the broker answered 200: the logout token was accepted.
  await client.backchannelLogout(otherSession.sub, otherSession.idpSid);
  assert.deepEqual(await sessionOf(other), { authenticated: false }, 'back-channel logout ended the session');
  assert.equal((await sessionOf(browser)).authenticated, true, "another user's session is untouched");

  // RP-initiated logout with revocation where the provider offers it.
  const refreshToken = (await unsealSession(browser.cookieHeader()))?.refreshToken;
  assert.ok(refreshToken, 'the session holds a refresh token');
  const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
  assert.equal(logout.status, 303);
  const endSession = String((await metadataOf(stack)).end_session_endpoint);
  assert.ok(logout.headers.get('location')?.startsWith(endSession), `logout goes to ${endSession}`);
  assert.deepEqual(await sessionOf(browser), { authenticated: false });
  const live = await stack.idp.provider.RefreshToken.find(refreshToken);
  if (expect.revocation ?? true) assert.equal(live, undefined, 'the refresh token was revoked at the provider');
  else assert.ok(live, 'without a revocation endpoint the refresh token stays live at the provider');
}

/** The broker's log lines (JSON on stderr, every level) while `run` runs; kept, not printed. */
export async function logsOf(run: () => Promise<void>): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = [];
  const write = process.stderr.write.bind(process.stderr);
  const level = process.env.LOG_LEVEL;
  process.env.LOG_LEVEL = 'debug';
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (!text.startsWith('{')) return write(chunk, ...(rest as []));
    for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
    return true;
  }) as typeof process.stderr.write;
  try {
    await run();
  } finally {
    process.stderr.write = write;
    if (level === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = level;
  }
  return lines;
}

export function group(name: string, options: QuirkStackOptions, body: (get: () => QuirkStack) => void): void {
  describe(name, () => {
    let stack: QuirkStack;
    before(async () => {
      stack = await startQuirkStack(options);
    });
    after(() => stack?.close());
    body(() => stack);
  });
}

/** Switches the given quirks on for one test, and the broker re-reads the metadata. */
export function withQuirks(stack: QuirkStack, quirks: Quirks): void {
  for (const key of Object.keys(stack.quirks) as Array<keyof Quirks>) delete stack.quirks[key];
  Object.assign(stack.quirks, quirks);
  stack.configure({});
}


/**
 * The ID token the provider issued at this browser's sign-in. The cookie never carries it
 * (AUDIT M2, L10): the stack must run with OIDC_END_SESSION_HINT=id_token, which keeps it
 * sealed in the store for logout; this reads it back from there (and takes it: a logout
 * after this sends no id_token_hint).
 */
export async function issuedIdToken(stack: QuirkStack, browser: BrowserClient): Promise<string> {
  const session = await unsealSession(browser.cookieHeader());
  assert.ok(session, 'a session cookie');
  const idToken = await takeIdTokenHint(stack.store, getConfig(), session);
  assert.ok(idToken, 'an ID token kept for logout (run the stack with OIDC_END_SESSION_HINT=id_token)');
  return idToken;
}
