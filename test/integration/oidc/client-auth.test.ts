/**
 * The broker authenticates to the token endpoint the way OIDC_CLIENT_AUTH says, against
 * a provider that accepts only that method for the client: client_secret_post, and
 * private_key_jwt with RS256 and ES256 keys (the public half registered as the client's
 * jwks, the private JWK given as OIDC_CLIENT_PRIVATE_KEY).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { startStack, type Stack, type StackOptions } from '../../helpers/stack.ts';
import { sessionOf, setCookies } from '../../helpers/core.ts';

async function clientKeyPair(alg: 'RS256' | 'ES256'): Promise<{ publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg },
  };
}

/** How the client authenticated on one request, as it was presented (not as registered). */
interface Presented {
  endpoint: string;
  mechanism: string;
}

/**
 * Records how each token and revocation request authenticated. oidc-provider takes
 * client_secret_basic and client_secret_post interchangeably for a secret client (and
 * its stats name the registered method), so the presented mechanism is read here.
 */
function recordClientAuth(stack: Stack): Presented[] {
  const seen: Presented[] = [];
  const record = (endpoint: string) => (ctx: KoaContextWithOIDC) => {
    const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
    const basic = /^basic /i.test(ctx.headers.authorization ?? '');
    const mechanism = [
      basic && 'basic',
      params.client_secret !== undefined && 'post',
      params.client_assertion !== undefined && `assertion:${String(params.client_assertion_type)}`,
    ]
      .filter(Boolean)
      .join('+');
    seen.push({ endpoint, mechanism: mechanism || 'none' });
  };
  stack.idp.provider.on('grant.success', record('token'));
  // Emitted by the revocation endpoint when it revokes a refresh token's grant.
  stack.idp.provider.on('grant.revoked', record('revocation'));
  return seen;
}

/**
 * Signs in, uses the session and signs out; asserts the method the provider recorded for
 * the code grant and the mechanism presented at the token and revocation endpoints.
 */
async function fullCycle(options: StackOptions, registered: string, presented: string): Promise<void> {
  const stack = await startStack(options);
  const seen = recordClientAuth(stack);
  try {
    const browser = stack.newBrowser();
    const callback = await browser.signIn('alice');
    assert.equal(callback.status, 303, await callback.text());
    assert.equal(setCookies(callback, 'cloakroom').length, 1);
    const session = await sessionOf(browser);
    assert.equal(session.authenticated, true);
    assert.equal((session.user as { sub: string }).sub, 'user-alice');
    const grants = stack.idp.stats.tokenRequests.filter((r) => r.grant_type === 'authorization_code');
    assert.deepEqual(
      grants.map((r) => [r.clientAuth, r.ok]),
      [[registered, true]],
    );

    // Revocation at logout authenticates the same way: the grant is revoked.
    const revokedBefore = stack.idp.stats.grantsRevoked;
    const logout = await browser.fetch('/auth/logout', { method: 'POST', headers: { origin: browser.origin } });
    assert.equal(logout.status, 303);
    assert.ok(stack.idp.stats.grantsRevoked > revokedBefore, 'the refresh token was revoked');

    assert.deepEqual(seen, [
      { endpoint: 'token', mechanism: presented },
      { endpoint: 'revocation', mechanism: presented },
    ]);
  } finally {
    await stack.close();
  }
}

const JWT_BEARER = 'assertion:urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('client authentication at the token endpoint', () => {
  test('client_secret_basic (the default)', async () => {
    await fullCycle({}, 'client_secret_basic', 'basic');
  });

  test('client_secret_post', async () => {
    await fullCycle(
      { client: { token_endpoint_auth_method: 'client_secret_post' }, env: { OIDC_CLIENT_AUTH: 'client_secret_post' } },
      'client_secret_post',
      'post',
    );
  });

  for (const alg of ['RS256', 'ES256'] as const) {
    test(`private_key_jwt with an ${alg} key`, async () => {
      const { publicJwk, privateJwk } = await clientKeyPair(alg);
      await fullCycle(
        {
          client: { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] } },
          env: {
            OIDC_CLIENT_AUTH: 'private_key_jwt',
            OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(privateJwk),
            // No secret at all: the key alone must do.
            OIDC_CLIENT_SECRET: undefined,
          },
        },
        'private_key_jwt',
        JWT_BEARER,
      );
    });
  }

  describe('a client registered for private_key_jwt but configured with a secret', () => {
    let publicJwk: JWK;
    before(async () => {
      ({ publicJwk } = await clientKeyPair('ES256'));
    });
    const registration = () => ({ token_endpoint_auth_method: 'private_key_jwt' as const, jwks: { keys: [publicJwk] } });

    for (const auth of ['client_secret_basic', 'client_secret_post']) {
      test(`without PAR, ${auth}: the code exchange is refused → 400 at the callback, never 500 or 503, no session`, async () => {
        // With Basic, oidc-provider answers 401 with a WWW-Authenticate challenge; with
        // post, a plain error body. Both are the same refusal.
        const stack = await startStack({ idp: { par: false }, client: registration(), env: { OIDC_CLIENT_AUTH: auth } });
        try {
          const browser = stack.newBrowser();
          const callback = await browser.signIn('alice');
          assert.equal(callback.status, 400);
          assert.equal(callback.headers.get('location'), null);
          assert.deepEqual(setCookies(callback, /^cloakroom(\.\d+)?$/), []);
          assert.equal(((await callback.json()) as { error: string }).error, 'invalid_request');
          assert.deepEqual(
            stack.idp.stats.tokenRequests.map((r) => [r.grant_type, r.ok, r.error]),
            [['authorization_code', false, 'invalid_client']],
          );
          assert.deepEqual(await sessionOf(browser), { authenticated: false });
        } finally {
          await stack.close();
        }
      });
    }

    test('with PAR: the push is refused → 503 idp_unavailable at login, never 500, no transaction', async () => {
      const stack = await startStack({ client: registration() });
      try {
        const response = await stack.newBrowser().fetch('/auth/login');
        assert.equal(response.status, 503);
        assert.equal(response.headers.get('cache-control'), 'no-store');
        assert.equal(response.headers.get('location'), null);
        assert.equal(((await response.json()) as { error: string }).error, 'idp_unavailable');
        assert.deepEqual(response.headers.getSetCookie(), []);
        assert.equal(stack.idp.stats.parRequests, 0);
      } finally {
        await stack.close();
      }
    });
  });
});
