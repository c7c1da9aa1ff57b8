import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../../lib/config/load.ts';
import { checkOpsToken } from '../../../lib/ops/ops-auth.ts';
import { BrokerError } from '../../../lib/errors.ts';
import { addressNetwork } from '../../../lib/ops/client-address.ts';

const MINIMAL = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'BnZe+9nVLCHfjkxTpE8FFkesLF+742lRsemoN5y2ECs=',
} as const;
const TOKEN = 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...MINIMAL, ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return [];
}

describe('OPS_TOKEN', () => {
  it('is optional: unset, the /ops/ endpoints are off', () => {
    assert.equal(loadConfig(MINIMAL).opsToken, undefined);
    assert.equal(loadConfig({ ...MINIMAL, OPS_TOKEN: TOKEN }).opsToken, TOKEN);
  });

  it('refuses a short or a weak token, naming the variable and the fix, never echoing it', () => {
    for (const weak of ['short', 'a'.repeat(40), 'password-password-password-password', '0123456789abcdef'.repeat(3)]) {
      const found = problems({ OPS_TOKEN: weak }).filter((p) => p.startsWith('OPS_TOKEN'));
      assert.equal(found.length, 1, `OPS_TOKEN=${weak} refused`);
      assert.match(found[0], /openssl rand/);
      assert.ok(!found[0].includes(weak), 'the token is not echoed');
    }
  });

  it('a misspelt OPS_ variable is reported', () => {
    assert.ok(problems({ OPS_TOKN: TOKEN }).some((p) => p.startsWith('OPS_TOKN')));
  });
});

describe('checkOpsToken', () => {
  const config = loadConfig({ ...MINIMAL, OPS_TOKEN: TOKEN });
  const withAuth = (value?: string) => new Request('http://localhost:3000/ops/sessions', { headers: value === undefined ? {} : { authorization: value } });
  const code = (fn: () => void) => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof BrokerError);
      return { code: error.code, headers: Object.fromEntries(error.headers) };
    }
    return undefined;
  };

  it('no OPS_TOKEN: not_found whatever is sent', () => {
    assert.equal(code(() => checkOpsToken(withAuth(`Bearer ${TOKEN}`), loadConfig(MINIMAL)))?.code, 'not_found');
  });
  it('accepts exactly the token, as a Bearer credential (scheme case-insensitive)', () => {
    assert.equal(code(() => checkOpsToken(withAuth(`Bearer ${TOKEN}`), config)), undefined);
    assert.equal(code(() => checkOpsToken(withAuth(`bearer ${TOKEN}`), config)), undefined);
  });
  it('refuses the rest with 401 and WWW-Authenticate: Bearer', () => {
    for (const value of [undefined, '', 'Bearer', 'Bearer ', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN} extra`]) {
      const refused = code(() => checkOpsToken(withAuth(value), config));
      assert.equal(refused?.code, 'unauthenticated', `authorization ${JSON.stringify(value)}`);
      assert.match(refused?.headers['www-authenticate'] ?? '', /^Bearer/);
    }
  });
});

describe('addressNetwork', () => {
  it('IPv4 by /24, IPv6 by /48, anything else unknown', () => {
    assert.equal(addressNetwork('203.0.113.77'), '203.0.113.0/24');
    assert.equal(addressNetwork('2001:db8:abcd:12::1'), '2001:db8:abcd::/48');
    assert.equal(addressNetwork('::1'), '0:0:0::/48');
    assert.equal(addressNetwork('unknown'), 'unknown');
  });
});
