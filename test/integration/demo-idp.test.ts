/**
 * The development identity provider and the demo API, exercised as the broker will use
 * them: a complete authorization-code flow without a browser, per-API JWT access tokens
 * by refresh with `resource`, refresh-token rotation with reuse detection, and
 * back-channel logout to a loopback receiver.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { startDemoApi } from '../../demo/api.ts';
import type { DemoApi } from '../../demo/api.ts';
import { loadOrCreateDemoJwks, startDevIdp } from '../../demo/idp.ts';
import type { DevIdp } from '../../demo/idp.ts';
import { CookieJar, authorizeWithoutBrowser, fetchWithJar } from '../helpers/idp-login.ts';

const CLIENT_ID = 'cloakroom-test';
const CLIENT_SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const REDIRECT_URI = 'http://localhost:49999/api/auth/callback';
const POST_LOGOUT_URI = 'http://localhost:49999/signed-out';
const RESOURCE = 'http://localhost:49998/';
const OTHER_RESOURCE = 'http://localhost:49997/';

interface TokenResponse {
  access_token?: string;
  id_token?: string;
  refresh_token?: string;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  error?: string;
  error_description?: string;
}

const b64url = (buffer: Buffer) => buffer.toString('base64url');

describe('development identity provider', () => {
  let idp: DevIdp;
  let api: DemoApi;
  let metadata: Record<string, string>;
  const logoutTokens: string[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      logoutTokens.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') ?? '');
      res.writeHead(200).end();
    });
  });

  before(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const receiverPort = (receiver.address() as AddressInfo).port;
    idp = await startDevIdp({
      port: 0,
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          redirect_uris: [REDIRECT_URI],
          post_logout_redirect_uris: [POST_LOGOUT_URI],
          // `localhost`, not 127.0.0.1: the name is what oidc-provider's SSRF guard resolves.
          backchannel_logout_uri: `http://localhost:${receiverPort}/api/auth/backchannel-logout`,
        },
      ],
      resources: {
        [RESOURCE]: { scope: 'demo:read demo:write' },
        [OTHER_RESOURCE]: { scope: 'reports:read', accessTokenTtl: 30 },
      },
    });
    api = await startDemoApi({ port: 0, issuer: idp.issuer, audience: RESOURCE, name: 'demo' });
    const response = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    metadata = (await response.json()) as Record<string, string>;
  });

  after(async () => {
    await api?.close();
    await idp?.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  function authorizationRequest(extra: Record<string, string | string[]> = {}) {
    const verifier = b64url(randomBytes(32));
    const state = b64url(randomBytes(16));
    const nonce = b64url(randomBytes(16));
    const url = new URL(metadata.authorization_endpoint);
    const params: Record<string, string | string[]> = {
      client_id: CLIENT_ID,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email offline_access demo:read reports:read',
      state,
      nonce,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
      prompt: 'consent',
      resource: [RESOURCE, OTHER_RESOURCE],
      ...extra,
    };
    for (const [key, value] of Object.entries(params)) {
      for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v);
    }
    return { url: url.href, verifier, state, nonce };
  }

  async function token(params: Record<string, string>): Promise<{ status: number; body: TokenResponse }> {
    const basic = Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64');
    const response = await fetch(metadata.token_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as TokenResponse };
  }

  async function signIn(username: string, password: string, jar?: CookieJar) {
    const request = authorizationRequest();
    const callback = await authorizeWithoutBrowser(request.url, { username, password }, REDIRECT_URI, { jar });
    assert.equal(callback.searchParams.get('error'), null, callback.searchParams.get('error_description') ?? '');
    assert.equal(callback.searchParams.get('state'), request.state);
    assert.equal(callback.searchParams.get('iss'), idp.issuer);
    const code = callback.searchParams.get('code');
    assert.ok(code, 'the redirect carries a code');
    const exchanged = await token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: request.verifier,
    });
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
    return { ...exchanged.body, nonce: request.nonce };
  }

  test('discovery advertises the localhost issuer and the endpoints the broker uses', () => {
    assert.match(idp.issuer, /^http:\/\/localhost:\d+$/);
    assert.equal(metadata.issuer, idp.issuer);
    for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint', 'revocation_endpoint', 'introspection_endpoint', 'pushed_authorization_request_endpoint']) {
      assert.ok(metadata[key], `${key} is advertised`);
    }
    assert.equal((metadata as unknown as { backchannel_logout_supported: boolean }).backchannel_logout_supported, true);
  });

  test('a wrong password is refused with 401 and the form again', async () => {
    await assert.rejects(
      authorizeWithoutBrowser(authorizationRequest().url, { username: 'alice', password: 'nope' }, REDIRECT_URI),
      /refused: HTTP 401/,
    );
  });

  test('a request without PKCE is refused', async () => {
    const url = new URL(authorizationRequest().url);
    url.searchParams.delete('code_challenge');
    url.searchParams.delete('code_challenge_method');
    const callback = await authorizeWithoutBrowser(url.href, { username: 'alice', password: 'alice-password' }, REDIRECT_URI);
    assert.equal(callback.searchParams.get('error'), 'invalid_request');
  });

  test('code flow, per-resource JWTs, rotation with reuse detection', async () => {
    idp.resetStats();
    const tokens = await signIn('alice', 'alice-password');

    assert.ok(tokens.id_token, 'an ID token');
    assert.ok(tokens.access_token, 'an access token');
    assert.ok(tokens.refresh_token, 'a refresh token (offline_access with prompt=consent)');
    assert.equal(idp.stats.authorizationCodeGrants, 1);

    const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
    const { payload: idClaims } = await jwtVerify(tokens.id_token, jwks, { issuer: idp.issuer, audience: CLIENT_ID });
    assert.equal(idClaims.sub, 'user-alice');
    assert.equal(idClaims.nonce, tokens.nonce);
    assert.equal(typeof idClaims.sid, 'string', 'sid in the ID token');
    assert.equal(idClaims.name, 'Alice Example', 'profile claims in the ID token');
    assert.equal(idClaims.email, 'alice@example.com');
    assert.equal(idClaims.email_verified, true);

    // Without `resource`, the token is the opaque one for userinfo.
    assert.equal(tokens.access_token.split('.').length, 1, 'opaque access token');
    const userinfo = await fetch(metadata.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfo.status, 200);
    assert.equal(((await userinfo.json()) as { sub: string }).sub, 'user-alice');

    // Refresh with `resource`: a JWT for that API, and a rotated refresh token.
    const rt1 = tokens.refresh_token;
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: rt1, resource: RESOURCE });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    const jwt = refreshed.body.access_token;
    assert.ok(jwt);
    const atClaims = decodeJwt(jwt);
    assert.equal(atClaims.aud, RESOURCE);
    assert.equal(atClaims.sub, 'user-alice');
    assert.equal(atClaims.scope, 'demo:read');
    assert.equal(atClaims.client_id, CLIENT_ID);
    assert.equal(refreshed.body.expires_in, 60, 'default access token lifetime');
    const rt2 = refreshed.body.refresh_token;
    assert.ok(rt2 && rt2 !== rt1, 'the refresh token rotated');

    // The demo API accepts it, says who called, and never echoes the token.
    const ok = await fetch(`${api.url}/items/42?x=1`, { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    const okText = await ok.text();
    assert.ok(!okText.includes(jwt.split('.')[2]), 'the token is not echoed');
    const okBody = JSON.parse(okText) as Record<string, unknown>;
    assert.deepEqual(
      { api: okBody.api, path: okBody.path, method: okBody.method, subject: okBody.subject, audience: okBody.audience, scope: okBody.scope, clientId: okBody.clientId },
      { api: 'demo', path: '/items/42', method: 'GET', subject: 'user-alice', audience: RESOURCE, scope: 'demo:read', clientId: CLIENT_ID },
    );
    assert.equal(okBody.expiresAt, atClaims.exp);

    // …and refuses a tampered one, a missing one, and a token for another API.
    const [h, p, s] = jwt.split('.');
    const forged = decodeJwt(jwt);
    const tampered = `${h}.${b64url(Buffer.from(JSON.stringify({ ...forged, sub: 'user-bob' })))}.${s}`;
    for (const authorization of [`Bearer ${tampered}`, `Bearer ${h}.${p}.${s.slice(0, -4)}AAAA`, '', `Bearer ${tokens.id_token}`, `Bearer ${tokens.access_token}`]) {
      const refused = await fetch(`${api.url}/items`, { headers: authorization ? { authorization } : {} });
      assert.equal(refused.status, 401, `refused: ${authorization.slice(0, 20)}`);
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
      assert.deepEqual(await refused.json(), { error: 'invalid_token' });
    }
    const other = await token({ grant_type: 'refresh_token', refresh_token: rt2, resource: OTHER_RESOURCE });
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.equal(decodeJwt(other.body.access_token!).aud, OTHER_RESOURCE);
    assert.equal(other.body.expires_in, 30, 'per-resource lifetime');
    const wrongAudience = await fetch(`${api.url}/items`, { headers: { authorization: `Bearer ${other.body.access_token}` } });
    assert.equal(wrongAudience.status, 401);
    const rt3 = other.body.refresh_token!;

    // Server-sent events: three, 300 ms apart.
    const started = Date.now();
    const events = await fetch(`${api.url}/stream/events`, { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /^text\/event-stream/);
    const data = (await events.text()).split('\n\n').filter(Boolean).map((e) => JSON.parse(e.replace(/^data: /, '')) as { n: number });
    assert.deepEqual(data.map((e) => e.n), [1, 2, 3]);
    assert.ok(Date.now() - started >= 550, 'the events were spread out');

    // Reuse of a consumed refresh token fails, and revokes the grant: the newest one fails too.
    const reuse = await token({ grant_type: 'refresh_token', refresh_token: rt1 });
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant');
    assert.equal(idp.stats.grantsRevoked, 1);
    const successor = await token({ grant_type: 'refresh_token', refresh_token: rt3 });
    assert.equal(successor.status, 400);
    assert.equal(successor.body.error, 'invalid_grant');
    const afterRevocation = await fetch(metadata.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(afterRevocation.status, 401, 'the opaque access token went with the grant');

    assert.equal(idp.stats.refreshGrants, 2);
    assert.deepEqual(
      idp.stats.tokenRequests.map(({ grant_type, resource, clientAuth, ok }) => ({ grant_type, resource, clientAuth, ok })),
      [
        { grant_type: 'authorization_code', resource: undefined, clientAuth: 'client_secret_basic', ok: true },
        { grant_type: 'refresh_token', resource: RESOURCE, clientAuth: 'client_secret_basic', ok: true },
        { grant_type: 'refresh_token', resource: OTHER_RESOURCE, clientAuth: 'client_secret_basic', ok: true },
        { grant_type: 'refresh_token', resource: undefined, clientAuth: 'client_secret_basic', ok: false },
        { grant_type: 'refresh_token', resource: undefined, clientAuth: 'client_secret_basic', ok: false },
      ],
    );
    assert.equal(JSON.stringify(idp.stats).includes(rt1), false, 'no token values in the stats');
  });

  test('a pushed authorization request is honoured', async () => {
    idp.resetStats();
    const request = authorizationRequest();
    const params = new URL(request.url).searchParams;
    const basic = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64');
    const pushed = await fetch(metadata.pushed_authorization_request_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: params,
    });
    assert.equal(pushed.status, 201);
    const { request_uri } = (await pushed.json()) as { request_uri: string };
    const url = new URL(metadata.authorization_endpoint);
    url.search = new URLSearchParams({ client_id: CLIENT_ID, request_uri }).toString();
    const callback = await authorizeWithoutBrowser(url.href, { username: 'alice', password: 'alice-password' }, REDIRECT_URI);
    assert.equal(callback.searchParams.get('state'), request.state);
    assert.ok(callback.searchParams.get('code'));
    assert.equal(idp.stats.parRequests, 1);
  });

  test('carol brings 150 groups in the ID token', async () => {
    const tokens = await signIn('carol', 'carol-password');
    const claims = decodeJwt(tokens.id_token!);
    assert.ok(Array.isArray(claims.groups));
    assert.equal((claims.groups as string[]).length, 150);
    assert.equal((claims.groups as string[])[0], 'group-001-engineering-platform');
  });

  test('RP-initiated logout sends a back-channel logout token to a loopback receiver', async () => {
    idp.resetStats();
    logoutTokens.length = 0;
    const jar = new CookieJar();
    const tokens = await signIn('bob', 'bob-password', jar);
    assert.ok(jar.names().includes('idp_session'), 'the provider cookies carry the idp_ prefix');
    const sid = decodeJwt(tokens.id_token!).sid;

    const endSession = new URL(metadata.end_session_endpoint);
    endSession.searchParams.set('id_token_hint', tokens.id_token!);
    endSession.searchParams.set('post_logout_redirect_uri', POST_LOGOUT_URI);
    endSession.searchParams.set('state', 'bye');
    const confirmPage = await fetchWithJar(jar, endSession, { headers: { accept: 'text/html' } });
    assert.equal(confirmPage.status, 200);
    const html = await confirmPage.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(action && xsrf, 'the confirmation form');
    const confirmed = await fetchWithJar(jar, new URL(action, endSession), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    assert.equal(confirmed.status, 303);
    const back = new URL(confirmed.headers.get('location')!);
    assert.equal(`${back.origin}${back.pathname}`, POST_LOGOUT_URI);
    assert.equal(back.searchParams.get('state'), 'bye');

    assert.equal(idp.stats.backchannelLogouts, 1);
    assert.equal(logoutTokens.length, 1);
    const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
    const { payload } = await jwtVerify(logoutTokens[0], jwks, { issuer: idp.issuer, audience: CLIENT_ID });
    assert.equal(payload.sub, 'user-bob');
    assert.equal(payload.sid, sid);
    assert.ok((payload.events as Record<string, unknown>)['http://schemas.openid.net/event/backchannel-logout']);
  });
});

describe('development identity provider without rotation', () => {
  test('a refresh token stays valid across uses', async () => {
    const idp = await startDevIdp({
      port: 0,
      rotateRefreshTokens: false,
      accessTokenTtl: 5,
      clients: [{ client_id: 'c', client_secret: 's'.repeat(40), redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_post' }],
      resources: { [RESOURCE]: { scope: 'demo:read' } },
    });
    try {
      const verifier = b64url(randomBytes(32));
      const url = new URL(`${idp.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: 'c',
        response_type: 'code',
        redirect_uri: REDIRECT_URI,
        scope: 'openid offline_access demo:read',
        code_challenge: b64url(createHash('sha256').update(verifier).digest()),
        code_challenge_method: 'S256',
        prompt: 'consent',
        resource: RESOURCE,
      }).toString();
      const callback = await authorizeWithoutBrowser(url.href, { username: 'alice', password: 'alice-password' }, REDIRECT_URI);
      const post = (params: Record<string, string>) =>
        fetch(`${idp.issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ client_id: 'c', client_secret: 's'.repeat(40), ...params }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as TokenResponse }));
      const first = await post({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: verifier });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.expires_in, 5);
      for (let i = 0; i < 2; i += 1) {
        const again = await post({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token!, resource: RESOURCE });
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.equal(again.body.refresh_token, first.body.refresh_token);
        assert.equal(again.body.expires_in, 5);
      }
      assert.equal(idp.stats.refreshGrants, 2);
      assert.equal(idp.stats.tokenRequests[0].clientAuth, 'client_secret_post');
    } finally {
      await idp.close();
    }
  });
});

describe('demo signing keys', () => {
  test('are generated once, private to the owner, and reused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cloakroom-jwks-'));
    try {
      const file = join(dir, 'nested', 'jwks.json');
      const first = await loadOrCreateDemoJwks(file);
      assert.deepEqual(first.keys.map((k) => (k as { alg: string }).alg), ['RS256', 'ES256']);
      assert.ok(first.keys.every((k) => 'd' in k), 'private keys');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.deepEqual(await loadOrCreateDemoJwks(file), first);
      assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), first);
      const idp = await startDevIdp({ port: 0, jwks: first, clients: [] });
      try {
        const published = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
        assert.deepEqual(published.keys.map((k) => k.kid), first.keys.map((k) => (k as unknown as { kid: string }).kid));
        assert.ok(published.keys.every((k) => !('d' in k)), 'only public parts are published');
      } finally {
        await idp.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
