/**
 * Cookie names and attributes under https: the `__Host-` prefix (the browser refuses it
 * unless Secure, Path=/ and host-only, so a sibling subdomain cannot plant or shadow the
 * session) and SameSite per configuration.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { loadConfig } from '../../../lib/config/load.ts';
import { sessionCookieAttributes, sessionCookieName, transactionCookieAttributes, transactionCookiePrefix } from '../../../lib/session/cookie.ts';
import { writeSession } from '../../../lib/session/manager.ts';
import type { Session } from '../../../lib/session/session.ts';

function configFor(appBaseUrl: string, extra: Record<string, string> = {}) {
  return loadConfig({
    APP_BASE_URL: appBaseUrl,
    OIDC_ISSUER: 'https://id.example.com',
    OIDC_CLIENT_ID: 'web',
    OIDC_CLIENT_SECRET: 'secret',
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    BFF_ROUTES: '[]',
    ...extra,
  });
}

const session: Session = {
  v: 1, id: 'abc', iss: 'https://id.example.com', sub: 'u1', user: { sub: 'u1' }, tokens: {},
  createdAt: Date.now(), touchedAt: Date.now(),
};

test('https: __Host- names, Secure, Path=/, no Domain', async () => {
  const config = configFor('https://app.example.com');
  assert.equal(sessionCookieName(config), '__Host-cloakroom');
  assert.equal(transactionCookiePrefix(config), '__Host-cloakroom-tx.');
  assert.equal(sessionCookieAttributes(config).secure, true);
  assert.equal(transactionCookieAttributes(config).secure, true);
  const [cookie] = await writeSession(session, [], config);
  assert.match(cookie, /^__Host-cloakroom=Fe26\.2\*/);
  assert.match(cookie, /; Path=\/;/);
  assert.match(cookie, /; HttpOnly/);
  assert.match(cookie, /; Secure/);
  assert.match(cookie, /; SameSite=Strict/);
  assert.doesNotMatch(cookie, /Domain=/i);
});

test('http on localhost: no prefix, no Secure (a browser would drop a Secure cookie over http)', async () => {
  const config = configFor('http://localhost:3000', { SESSION_SAMESITE: 'lax' });
  assert.equal(sessionCookieName(config), 'cloakroom');
  const [cookie] = await writeSession(session, [], config);
  assert.match(cookie, /^cloakroom=/);
  assert.doesNotMatch(cookie, /Secure/);
  assert.match(cookie, /; SameSite=Lax/);
});
