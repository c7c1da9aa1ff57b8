/**
 * The pure pieces of DPoP per route (RFC 9449): the route option's validation, the token
 * slots that keep bound and Bearer tokens apart, the provider check, the nonce challenge
 * parser, and what the session key costs in the sealed cookie.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dpopProviderProblems, dpopTokenKey, isDPoPTokenKey, newSessionKey, resourceOfTokenKey } from '../../../lib/oidc/dpop.ts';
import { asksForNonce } from '../../../lib/proxy/dpop.ts';
import { parseRouteTable, type Route } from '../../../lib/proxy/route-table.ts';
import { seal, type SealKeys } from '../../../lib/session/codec.ts';
import type { Session } from '../../../lib/session/session.ts';

const route = (fields: Record<string, unknown>) => parseRouteTable([{ path: '/api/x', upstream: 'https://x.internal', ...fields }]);

describe('the "dpop" route option', () => {
  it('defaults to false and takes true', () => {
    const plain = route({});
    const bound = route({ dpop: true });
    assert.ok(plain.ok && bound.ok);
    assert.equal(plain.routes[0]?.dpop, false);
    assert.equal(bound.routes[0]?.dpop, true);
  });
  it('refuses a non-boolean, auth "none", and the WebSocket combination, naming the route', () => {
    const wrong = route({ dpop: 'yes' });
    assert.ok(!wrong.ok);
    assert.match(wrong.problems.join('\n'), /route\[0\]\.dpop: must be true or false/);
    const none = route({ dpop: true, auth: 'none' });
    assert.ok(!none.ok);
    assert.match(none.problems.join('\n'), /route\[0\]\.dpop: the route "\/api\/x" has auth "none"/);
    const socket = route({ dpop: true, websocket: true });
    assert.ok(!socket.ok);
    assert.match(socket.problems.join('\n'), /"websocket": true and "dpop": true, which are not supported together/);
  });
});

describe('token slots', () => {
  it('keep a DPoP-bound token apart from the Bearer token of the same resource', () => {
    assert.equal(dpopTokenKey('https://orders.internal/'), 'dpop https://orders.internal/');
    assert.equal(dpopTokenKey(undefined), 'dpop ');
    assert.notEqual(dpopTokenKey('https://a/'), 'https://a/');
    assert.equal(isDPoPTokenKey(dpopTokenKey('https://a/')), true);
    assert.equal(isDPoPTokenKey('https://a/'), false);
    assert.equal(isDPoPTokenKey(''), false);
    assert.equal(resourceOfTokenKey(dpopTokenKey('https://a/')), 'https://a/');
    assert.equal(resourceOfTokenKey(dpopTokenKey(undefined)), '');
    assert.equal(resourceOfTokenKey('https://a/'), 'https://a/');
  });
});

describe('dpopProviderProblems', () => {
  const routes = (parseRouteTable([{ path: '/api/secure', upstream: 'https://s.internal', dpop: true }, { path: '/api/plain', upstream: 'https://p.internal' }]) as { routes: Route[] }).routes;
  const metadata = (extra: Record<string, unknown>) => ({ issuer: 'https://idp.example', ...extra });
  it('accepts a provider that advertises ES256', () => {
    assert.deepEqual(dpopProviderProblems({ routes }, metadata({ dpop_signing_alg_values_supported: ['ES256', 'RS256'] })), []);
  });
  it('names each DPoP route and the fix when DPoP is not advertised, or not ES256', () => {
    const missing = dpopProviderProblems({ routes }, metadata({}));
    assert.equal(missing.length, 1);
    assert.match(missing[0] as string, /"\/api\/secure" has "dpop": true but the identity provider does not advertise DPoP.*enable DPoP/);
    const other = dpopProviderProblems({ routes }, metadata({ dpop_signing_alg_values_supported: ['RS256'] }));
    assert.match(other[0] as string, /\["RS256"\] without ES256/);
  });
  it('says nothing when no route uses DPoP', () => {
    assert.deepEqual(dpopProviderProblems({ routes: routes.filter((r) => !r.dpop) }, metadata({})), []);
  });
});

describe('asksForNonce (RFC 9449 §9)', () => {
  it('recognises the use_dpop_nonce challenge on a 401 only', () => {
    assert.equal(asksForNonce(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="x"' }), true);
    assert.equal(asksForNonce(401, { 'www-authenticate': ['Bearer realm="a"', 'DPoP algs="ES256", error="use_dpop_nonce"'] }), true);
    assert.equal(asksForNonce(401, { 'www-authenticate': 'DPoP error="invalid_token"' }), false);
    assert.equal(asksForNonce(401, { 'www-authenticate': 'Bearer error="use_dpop_nonce"' }), false);
    assert.equal(asksForNonce(400, { 'www-authenticate': 'DPoP error="use_dpop_nonce"' }), false);
    assert.equal(asksForNonce(401, {}), false);
  });
});

describe('the session key', () => {
  it('is a private P-256 JWK, different per session', async () => {
    const [a, b] = [await newSessionKey(), await newSessionKey()];
    assert.equal(a.kty, 'EC');
    assert.equal(a.crv, 'P-256');
    assert.equal(typeof a.d, 'string');
    assert.notEqual(a.d, b.d);
  });
  it('costs a bounded number of sealed bytes in the cookie (measured)', async () => {
    const keys: SealKeys = { sealPassword: { 1: 'x'.repeat(32) }, unsealPasswords: { 1: 'x'.repeat(32) } };
    const session: Session = {
      v: 1, id: 'a'.repeat(43), iss: 'https://idp.example', sub: 'user-1', user: { sub: 'user-1', name: 'Alice' },
      refreshToken: 'r'.repeat(43), tokens: {}, createdAt: Date.now(), touchedAt: Date.now(),
    };
    const without = (await seal(session, keys, 3600)).length;
    const withKey = (await seal({ ...session, dpopKey: await newSessionKey() }, keys, 3600)).length;
    const added = withKey - without;
    console.log(`session DPoP key: +${added} sealed cookie bytes (${without} → ${withKey})`);
    // 4 base64url coordinates of 43 characters and the JSON around them, sealed (×4/3).
    assert.ok(added > 200 && added < 400, `added ${added} bytes`);
  });
});
