/**
 * `GET /auth/login` against a real oidc-provider: the authorization request it makes
 * (code flow, PKCE S256, state, nonce, the configured redirect URI whatever the Host
 * says, offline_access with prompt=consent), PAR, `returnTo` handling through complete
 * sign-ins, parallel tabs and abandoned sign-ins.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { authorizeWithoutBrowser } from '../../helpers/idp-login.ts';
import { CLIENT_ID, startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { callbackUrl, cookieAttributes, sessionCookiesSet, sessionOf, setCookies, unsealSession, unsealTransaction } from '../../helpers/core.ts';

const payloads = JSON.parse(readFileSync(new URL('../../fixtures/return-to-payloads.json', import.meta.url), 'utf8')) as {
  unsafe: unknown[];
  safe: string[];
};
const unsafeStrings = payloads.unsafe.filter((p): p is string => typeof p === 'string');

/**
 * `GET /auth/login` over raw HTTP, so that `Host` can be forged (fetch refuses to).
 * `X-Forwarded-*` and `Forwarded` always name `forgedHost`; `Host` does too unless the
 * real one is given (a forged Host alone is refused: AUDIT L11).
 */
function loginWithForgedHost(port: number, forgedHost: string, host = forgedHost): Promise<{ status: number; location: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/auth/login',
        headers: {
          host,
          'x-forwarded-host': forgedHost,
          'x-forwarded-proto': 'https',
          forwarded: `host=${forgedHost};proto=https`,
        },
      },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? '') });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function assertAuthorizationParameters(params: Record<string, unknown>, origin: string): void {
  assert.equal(params.response_type, 'code');
  assert.equal(params.client_id, CLIENT_ID);
  assert.equal(params.redirect_uri, `${origin}/auth/callback`);
  assert.equal(params.code_challenge_method, 'S256');
  assert.match(String(params.code_challenge), /^[A-Za-z0-9_-]{43,128}$/);
  assert.match(String(params.state), /^[A-Za-z0-9_-]{16,}$/);
  assert.match(String(params.nonce), /^[A-Za-z0-9_-]{16,}$/);
  const scopes = String(params.scope).split(' ');
  for (const scope of ['openid', 'offline_access']) assert.ok(scopes.includes(scope), `scope has ${scope}: ${params.scope}`);
  // oidc-provider grants offline_access (a refresh token) only with prompt=consent.
  assert.equal(params.prompt, 'consent');
}

describe('GET /auth/login with PAR', () => {
  let stack: Stack;
  const pushed: Array<Record<string, unknown>> = [];

  before(async () => {
    stack = await startStack();
    stack.idp.provider.on('pushed_authorization_request.success', (ctx: KoaContextWithOIDC) => {
      pushed.push({ ...(ctx.oidc.params as Record<string, unknown>), client_id: ctx.oidc.client?.clientId });
    });
  });
  after(() => stack.close());

  test('redirects to the authorization endpoint with a pushed request: code, PKCE S256, state, nonce, offline_access', async () => {
    const metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    const browser = stack.newBrowser();
    const parBefore = stack.idp.stats.parRequests;
    const pushedBefore = pushed.length;

    const response = await browser.fetch('/auth/login');
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(`${location.origin}${location.pathname}`, metadata.authorization_endpoint);
    // With PAR only client_id and request_uri travel through the browser (RFC 9126 §4).
    assert.deepEqual([...location.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    assert.match(location.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/);

    assert.equal(stack.idp.stats.parRequests, parBefore + 1);
    assert.equal(pushed.length, pushedBefore + 1);
    const params = pushed[pushed.length - 1];
    assertAuthorizationParameters(params, browser.origin);

    // The transaction cookie is named after the state and holds the verifier, not in clear.
    const [tx] = setCookies(response, /^cloakroom-tx\./);
    assert.ok(tx, 'a transaction cookie');
    assert.equal(tx.slice('cloakroom-tx.'.length, tx.indexOf('=')), params.state);
    const attributes = cookieAttributes(tx);
    assert.equal(attributes.get('path'), '/');
    assert.ok(attributes.has('httponly'));
    assert.equal(attributes.get('samesite'), 'Lax');
    assert.ok(!attributes.has('domain'));
    const value = tx.slice(tx.indexOf('=') + 1, tx.indexOf(';'));
    assert.ok(value.startsWith('Fe26.2*'), 'an iron seal');
    const opened = await unsealTransaction(value);
    assert.ok(opened);
    assert.equal(opened.state, params.state);
    assert.equal(opened.nonce, params.nonce);
    assert.ok(!value.includes(opened.codeVerifier) && !value.includes(opened.nonce));
    assert.equal(sessionCookiesSet(response).length, 0, 'no session before the callback');
  });

  test('the redirect URI comes from APP_BASE_URL even with a forged X-Forwarded-Host; a forged Host is refused', async () => {
    const pushedBefore = pushed.length;
    const refused = await loginWithForgedHost(stack.broker.port, 'evil.example');
    assert.equal(refused.status, 400);
    assert.equal(pushed.length, pushedBefore, 'refused before any call to the provider');
    const answer = await loginWithForgedHost(stack.broker.port, 'evil.example', new URL(stack.broker.url).host);
    assert.equal(answer.status, 302);
    assert.ok(answer.location.startsWith(stack.idp.issuer), answer.location);
    assert.ok(!answer.location.includes('evil.example'));
    assert.equal(pushed.length, pushedBefore + 1);
    assert.equal(pushed[pushed.length - 1].redirect_uri, `${stack.broker.url}/auth/callback`);
  });

  test('a sign-in yields a session holding a refresh token that the provider accepts', async () => {
    const browser = stack.newBrowser();
    const grantsBefore = stack.idp.stats.authorizationCodeGrants;
    const callback = await browser.signIn('alice');
    assert.equal(callback.status, 303);
    assert.equal(stack.idp.stats.authorizationCodeGrants, grantsBefore + 1);
    const last = stack.idp.stats.tokenRequests.at(-1);
    assert.equal(last?.grant_type, 'authorization_code');
    assert.equal(last?.ok, true);

    const session = await unsealSession(browser.cookieHeader());
    assert.ok(session, 'the session cookie unseals');
    assert.equal(typeof session.refreshToken, 'string');
    assert.ok((session.refreshToken ?? '').length > 0);
    // Introspection does not consume the (rotating) refresh token.
    const metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    const introspection = await fetch(metadata.introspection_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${stack.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: session.refreshToken as string, token_type_hint: 'refresh_token' }),
    });
    const info = (await introspection.json()) as { active: boolean; client_id?: string; token_type?: string; scope?: string; sub?: string };
    assert.equal(info.active, true);
    assert.equal(info.client_id, CLIENT_ID);
    // oidc-provider names a token_type for every token but a refresh token.
    assert.equal(info.token_type, undefined);
    assert.equal(info.sub, 'user-alice');
    assert.ok(info.scope?.split(' ').includes('offline_access'));
  });

  describe('returnTo after a complete sign-in', () => {
    let browser: BrowserClient;
    before(() => {
      // One browser: the provider session is kept, so each sign-in is consent only (fast).
      browser = stack.newBrowser();
    });

    async function signInReturningTo(returnTo: string): Promise<Response> {
      const query = new URLSearchParams({ returnTo });
      const login = await browser.fetch(`/auth/login?${query}`);
      assert.equal(login.status, 302, `login with returnTo ${JSON.stringify(returnTo)}`);
      const url = await authorizeWithoutBrowser(
        login.headers.get('location') as string,
        { username: 'alice', password: 'alice-password' },
        `${browser.origin}/auth/callback`,
        { jar: browser.jar },
      );
      return browser.fetch(url.pathname + url.search);
    }

    test(`every unsafe returnTo (${unsafeStrings.length}) lands on exactly the origin's root`, async () => {
      assert.ok(unsafeStrings.length >= 100);
      for (const returnTo of unsafeStrings) {
        const callback = await signInReturningTo(returnTo);
        assert.equal(callback.status, 303, JSON.stringify(returnTo));
        assert.equal(callback.headers.get('location'), `${browser.origin}/`, `returnTo ${JSON.stringify(returnTo)}`);
      }
    });

    test(`every safe returnTo (${payloads.safe.length}) is kept`, async () => {
      for (const returnTo of payloads.safe) {
        const callback = await signInReturningTo(returnTo);
        assert.equal(callback.status, 303, JSON.stringify(returnTo));
        assert.equal(callback.headers.get('location'), `${browser.origin}${returnTo}`);
      }
    });
  });

  test('two tabs: two sign-ins started in one browser both complete, the second first', async () => {
    const browser = stack.newBrowser();
    const first = await callbackUrl(browser, 'alice', '/first');
    const second = await callbackUrl(browser, 'alice', '/second');
    assert.notEqual(first.searchParams.get('state'), second.searchParams.get('state'));

    const secondAnswer = await browser.fetch(second.pathname + second.search);
    assert.equal(secondAnswer.status, 303);
    assert.equal(secondAnswer.headers.get('location'), `${browser.origin}/second`);
    assert.equal(sessionCookiesSet(secondAnswer).length, 1);

    const firstAnswer = await browser.fetch(first.pathname + first.search);
    assert.equal(firstAnswer.status, 303);
    assert.equal(firstAnswer.headers.get('location'), `${browser.origin}/first`);
    assert.equal(sessionCookiesSet(firstAnswer).length, 1);

    const session = await sessionOf(browser);
    assert.equal(session.authenticated, true);
  });

  test('30 abandoned sign-ins keep the Cookie header small and at most 5 transactions; the newest completes', async () => {
    const browser = stack.newBrowser();
    let newest = '';
    for (let i = 0; i < 30; i++) newest = await browser.startLogin(`/tab-${i}`);
    const header = browser.cookieHeader();
    assert.ok(Buffer.byteLength(`Cookie: ${header}`) < 8192, `Cookie header of ${header.length} bytes`);
    const transactions = header.split('; ').filter((c) => c.startsWith('cloakroom-tx.'));
    assert.ok(transactions.length >= 1 && transactions.length <= 5, `${transactions.length} transaction cookies`);

    const url = await authorizeWithoutBrowser(newest, { username: 'alice', password: 'alice-password' }, `${browser.origin}/auth/callback`, {
      jar: browser.jar,
    });
    const callback = await browser.fetch(url.pathname + url.search);
    assert.equal(callback.status, 303);
    assert.equal(callback.headers.get('location'), `${browser.origin}/tab-29`);
    assert.equal((await sessionOf(browser)).authenticated, true);
  });
});

describe('GET /auth/login without PAR', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ idp: { par: false } });
  });
  after(() => stack.close());

  test('the authorization URL carries the request, with the configured redirect URI despite a forged X-Forwarded-Host', async () => {
    const metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(metadata.pushed_authorization_request_endpoint, undefined);
    for (const answer of [
      await (async () => {
        const r = await stack.newBrowser().fetch('/auth/login');
        return { status: r.status, location: r.headers.get('location') ?? '' };
      })(),
      await loginWithForgedHost(stack.broker.port, 'evil.example', new URL(stack.broker.url).host),
    ]) {
      assert.equal(answer.status, 302);
      const url = new URL(answer.location);
      assert.equal(`${url.origin}${url.pathname}`, metadata.authorization_endpoint);
      assertAuthorizationParameters(Object.fromEntries(url.searchParams), stack.broker.url);
    }
    assert.equal(stack.idp.stats.parRequests, 0);
  });

  test('a sign-in completes without PAR', async () => {
    const browser = stack.newBrowser();
    const callback = await browser.signIn('bob');
    assert.equal(callback.status, 303);
    const session = await sessionOf(browser);
    assert.equal(session.authenticated, true);
    assert.equal((session.user as { sub: string }).sub, 'user-bob');
  });
});
