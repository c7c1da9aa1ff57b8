import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { resetConfigForTests } from '../../../lib/config/load.ts';
import { endpoint } from '../../../lib/http/handler.ts';
import { jsonResponse } from '../../../lib/http/responses.ts';

const ENV = {
  APP_BASE_URL: 'https://app.example.com',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'a-client-secret',
  SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
  BFF_ROUTES: '[]',
};

describe('endpoint(): the Host check', () => {
  const saved: Record<string, string | undefined> = {};
  before(() => {
    for (const [key, value] of Object.entries(ENV)) {
      saved[key] = process.env[key];
      process.env[key] = value;
    }
    resetConfigForTests();
  });
  after(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    resetConfigForTests();
  });

  let calls = 0;
  const handler = async () => {
    calls++;
    return jsonResponse({ ok: true });
  };
  const request = (host: string) => new Request('https://app.example.com/x', { headers: { host } });

  it('runs the handler only for the configured host', async () => {
    const wrapped = endpoint(handler);
    calls = 0;
    assert.equal((await wrapped(request('app.example.com'))).status, 200);
    const refused = await wrapped(request('evil.example'));
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: string }).error, 'invalid_request');
    assert.equal(refused.headers.get('cache-control'), 'no-store');
    assert.equal(calls, 1);
  });

  it('checkHost: false serves any host (probes by address, bearer-protected endpoints)', async () => {
    calls = 0;
    assert.equal((await endpoint(handler, { checkHost: false })(request('10.0.0.7:3000'))).status, 200);
    assert.equal(calls, 1);
  });
});
