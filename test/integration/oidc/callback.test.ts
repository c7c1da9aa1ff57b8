/**
 * `GET /auth/callback` failures against a real oidc-provider. Every one answers 400 —
 * JSON `invalid_request` for API clients, an HTML page for a browser — with no session
 * cookie and no redirect, and never a 500. Failures of `state` and `iss` are caught before
 * the token endpoint is ever called.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { getConfig } from '../../../lib/config/load.ts';
import { seal } from '../../../lib/session/codec.ts';
import { fetchWithJar } from '../../helpers/idp-login.ts';
import { startStack, type BrowserClient, type Stack } from '../../helpers/stack.ts';
import { callbackUrl, sessionCookiesSet, sessionOf, setCookies, unsealTransaction } from '../../helpers/core.ts';

/** What a failing case sends to the broker: the browser it comes from and the callback path. */
interface Attempt {
  browser: BrowserClient;
  path: string;
  /** A Cookie header to send instead of the browser's jar. */
  cookieHeader?: string;
}

interface FailureCase {
  name: string;
  /**
   * What the token endpoint sees: nothing (the broker refuses first), a refused code
   * exchange, or a successful one whose ID token the broker then refuses.
   */
  tokenEndpoint: 'untouched' | 'refused' | 'redeemed';
  prepare(stack: Stack): Promise<Attempt>;
}

const pathOf = (url: URL) => url.pathname + url.search;

/** Drives the provider's sign-in page to its Cancel link; returns the callback URL (error=access_denied). */
async function cancelAtProvider(browser: BrowserClient): Promise<URL> {
  let url = new URL(await browser.startLogin());
  for (let hop = 0; hop < 10; hop++) {
    if (url.href.startsWith(`${browser.origin}/auth/callback`)) return url;
    const response = await fetchWithJar(browser.jar, url, { headers: { accept: 'text/html' } });
    const location = response.headers.get('location');
    if (location) {
      await response.body?.cancel();
      url = new URL(location, url);
      continue;
    }
    const html = await response.text();
    const cancel = /<a class="cancel" href="([^"]+)"/.exec(html)?.[1];
    assert.ok(cancel, `the provider's sign-in page has a Cancel link (HTTP ${response.status})`);
    url = new URL(cancel.replaceAll('&amp;', '&'), url);
  }
  throw new Error('the cancelled sign-in never came back to the broker');
}

const CASES: FailureCase[] = [
  {
    name: 'state missing',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      url.searchParams.delete('state');
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'state forged (unknown to the browser)',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      url.searchParams.set('state', randomBytes(32).toString('base64url'));
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'state replayed (the same callback URL a second time)',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      const first = await browser.fetch(pathOf(url));
      assert.equal(first.status, 303, 'the first use signs in');
      assert.equal(sessionCookiesSet(first).length, 1);
      // The browser now holds a session; the replay must not add or replace one.
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'transaction cookie absent (the callback URL taken to another browser)',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const url = await callbackUrl(stack.newBrowser());
      return { browser: stack.newBrowser(), path: pathOf(url) };
    },
  },
  {
    name: 'iss of another issuer (RFC 9207 mix-up)',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      url.searchParams.set('iss', 'https://evil.example');
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'iss differing from the issuer by a trailing slash',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      url.searchParams.set('iss', `${stack.idp.issuer}/`);
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'iss missing while the provider advertises RFC 9207',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      assert.equal(url.searchParams.get('iss'), stack.idp.issuer, 'the provider sends iss');
      url.searchParams.delete('iss');
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'access_denied: the user pressed Cancel at the provider',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await cancelAtProvider(browser);
      assert.equal(url.searchParams.get('error'), 'access_denied');
      assert.equal(url.searchParams.has('code'), false);
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: 'access_denied crafted with a valid state and iss',
    tokenEndpoint: 'untouched',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      const crafted = new URLSearchParams({ error: 'access_denied', state: url.searchParams.get('state') ?? '', iss: stack.idp.issuer });
      return { browser, path: `/auth/callback?${crafted}` };
    },
  },
  {
    name: 'the token endpoint refuses the code (tampered)',
    tokenEndpoint: 'refused',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      const code = url.searchParams.get('code') ?? '';
      url.searchParams.set('code', `${code.slice(0, -4)}${code.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`);
      return { browser, path: pathOf(url) };
    },
  },
  {
    name: "another sign-in's code (code injection: PKCE does not match)",
    tokenEndpoint: 'refused',
    async prepare(stack) {
      const victim = stack.newBrowser();
      const victimUrl = await callbackUrl(victim);
      const attacker = stack.newBrowser();
      const attackerUrl = await callbackUrl(attacker, 'bob');
      victimUrl.searchParams.set('code', attackerUrl.searchParams.get('code') ?? '');
      return { browser: victim, path: pathOf(victimUrl) };
    },
  },
  {
    name: "the ID token's nonce is not the transaction's",
    tokenEndpoint: 'redeemed',
    async prepare(stack) {
      const browser = stack.newBrowser();
      const url = await callbackUrl(browser);
      const state = url.searchParams.get('state') ?? '';
      const name = `cloakroom-tx.${state}`;
      const tx = await unsealTransaction(browser.cookie(name) ?? '');
      assert.ok(tx, 'the transaction unseals');
      // Same state and PKCE verifier (so the code exchange succeeds), another nonce.
      const forged = await seal({ ...tx, nonce: randomBytes(32).toString('base64url') }, getConfig().session, 600);
      return { browser, path: pathOf(url), cookieHeader: `${name}=${forged}` };
    },
  },
];

describe('GET /auth/callback failures', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(() => stack.close());

  test('the provider advertises RFC 9207 (iss in the authorization response)', async () => {
    const metadata = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  });

  for (const failure of CASES) {
    for (const mode of ['json', 'html'] as const) {
      test(`${failure.name} → 400 (${mode}), no session cookie, no redirect`, async () => {
        const attempt = await failure.prepare(stack);
        const sessionBefore = attempt.cookieHeader ? undefined : attempt.browser.cookie('cloakroom');
        const tokenRequests = stack.idp.stats.tokenRequests.length;
        const codeGrants = stack.idp.stats.authorizationCodeGrants;

        const headers: Record<string, string> = mode === 'html' ? { accept: 'text/html,application/xhtml+xml' } : { accept: 'application/json' };
        const response = attempt.cookieHeader
          ? await fetch(new URL(attempt.path, attempt.browser.origin), { headers: { ...headers, cookie: attempt.cookieHeader }, redirect: 'manual' })
          : await attempt.browser.fetch(attempt.path, { headers });
        const body = await response.text();

        assert.equal(response.status, 400, body);
        assert.equal(response.headers.get('location'), null);
        assert.deepEqual(sessionCookiesSet(response), [], 'no session cookie');
        assert.equal(response.headers.get('cache-control'), 'no-store');
        if (mode === 'json') {
          assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
          const json = JSON.parse(body) as Record<string, unknown>;
          assert.equal(json.error, 'invalid_request');
          assert.deepEqual(Object.keys(json).filter((k) => k !== 'error' && k !== 'message'), []);
        } else {
          assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
          assert.match(body, /<h1>Sign-in failed<\/h1>/);
        }
        assert.ok(!body.includes('eyJ'), 'nothing token-like in the answer');

        const requests = stack.idp.stats.tokenRequests.slice(tokenRequests);
        if (failure.tokenEndpoint === 'untouched') {
          assert.deepEqual(requests, [], 'the token endpoint was not called');
          assert.equal(stack.idp.stats.authorizationCodeGrants, codeGrants);
        } else if (failure.tokenEndpoint === 'refused') {
          assert.deepEqual(
            requests.map((r) => [r.grant_type, r.ok, r.error]),
            [['authorization_code', false, 'invalid_grant']],
          );
        } else {
          // The provider answered with tokens; the broker refused the ID token.
          assert.deepEqual(requests.map((r) => [r.grant_type, r.ok]), [['authorization_code', true]]);
        }

        // The failed callback signed nobody in (and did not replace an existing session).
        if (attempt.cookieHeader === undefined) {
          assert.equal(attempt.browser.cookie('cloakroom'), sessionBefore);
          if (sessionBefore === undefined) assert.equal((await sessionOf(attempt.browser)).authenticated, false);
        }
        // A spent transaction is expired by the failure answer, never renewed.
        for (const tx of setCookies(response, /^cloakroom-tx\./)) assert.match(tx, /; Max-Age=0/);
      });
    }
  }

  test('a nonce or PKCE failure spends the transaction: the genuine callback afterwards is refused too', async () => {
    const browser = stack.newBrowser();
    const url = await callbackUrl(browser);
    const tampered = new URL(url);
    tampered.searchParams.set('code', 'not-the-code');
    assert.equal((await browser.fetch(pathOf(tampered))).status, 400);
    const genuine = await browser.fetch(pathOf(url));
    assert.equal(genuine.status, 400);
    assert.deepEqual(sessionCookiesSet(genuine), []);
  });

  test('a replay with a copy of the transaction cookie is refused: the code is single-use at the provider', async () => {
    const browser = stack.newBrowser();
    const url = await callbackUrl(browser);
    const copied = browser.cookieHeader();
    const first = await browser.fetch(pathOf(url));
    assert.equal(first.status, 303);
    const replay = await fetch(new URL(pathOf(url), browser.origin), { headers: { cookie: copied }, redirect: 'manual' });
    assert.equal(replay.status, 400);
    assert.equal(replay.headers.get('location'), null);
    assert.deepEqual(sessionCookiesSet(replay), []);
    assert.equal(((await replay.json()) as { error: string }).error, 'invalid_request');
  });

  test('a valid callback still signs in (control)', async () => {
    const browser = stack.newBrowser();
    const url = await callbackUrl(browser, 'alice', '/welcome');
    const response = await browser.fetch(pathOf(url));
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), `${browser.origin}/welcome`);
    assert.equal(sessionCookiesSet(response).length, 1);
  });
});
