import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../lib/config/load.ts';
import { isConfiguredHost } from '../../../lib/security/host.ts';

const fixtures = JSON.parse(readFileSync(new URL('../../fixtures/host-payloads.json', import.meta.url), 'utf8')) as {
  cases: Array<{ appBaseUrl: string; accepted: string[]; refused: string[] }>;
};

const configFor = (appBaseUrl: string) =>
  loadConfig({
    APP_BASE_URL: appBaseUrl,
    OIDC_ISSUER: 'https://id.example.com',
    OIDC_CLIENT_ID: 'cloakroom',
    OIDC_CLIENT_SECRET: 'a-client-secret',
    SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
    BFF_ROUTES: '[]',
  });

describe('isConfiguredHost (test/fixtures/host-payloads.json)', () => {
  for (const c of fixtures.cases) {
    const config = configFor(c.appBaseUrl);
    for (const host of c.accepted) it(`${c.appBaseUrl}: accepts ${JSON.stringify(host)}`, () => assert.equal(isConfiguredHost(host, config), true));
    for (const host of c.refused) it(`${c.appBaseUrl}: refuses ${JSON.stringify(host)}`, () => assert.equal(isConfiguredHost(host, config), false));
    it(`${c.appBaseUrl}: refuses a request without Host`, () => assert.equal(isConfiguredHost(null, config), false));
  }
});
