/**
 * AUDIT.md L10: logout answered 303 to the provider's end_session_endpoint with the whole
 * ID token (name, email, groups) as `id_token_hint` in the URL — browser history, the
 * provider's access logs. With the default OIDC_END_SESSION_HINT=client_id the URL names
 * the client instead (RP-Initiated Logout 1.0 §2), and the provider still accepts it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fetchWithJar } from '../helpers/idp-login.ts';
import { CLIENT_ID, startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
before(async () => {
  stack = await startStack();
});
after(() => stack?.close());

test('the logout redirect carries client_id, no ID token, and the provider shows its sign-out confirmation', async () => {
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('carol')).status, 303);
  const response = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
  assert.equal(response.status, 303);
  const location = response.headers.get('location') ?? '';
  assert.ok(location.startsWith(`${stack.idp.issuer}/`), location.slice(0, 80));
  assert.doesNotMatch(location, /eyJ[A-Za-z0-9_-]+\.eyJ/, 'no JWT in the URL');
  const url = new URL(location);
  assert.equal(url.searchParams.get('id_token_hint'), null);
  assert.equal(url.searchParams.get('client_id'), CLIENT_ID);
  const confirm = await fetchWithJar(browser.jar, url, { headers: { accept: 'text/html' } });
  assert.equal(confirm.status, 200);
  assert.match(await confirm.text(), /op\.logoutForm/);
});
