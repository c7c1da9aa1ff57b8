/**
 * Issue 13, point 4: `OIDC_ISSUER` with a trailing slash that the provider's issuer lacks
 * (Keycloak-style `…/realms/main/`). Through the real production server (`next start`),
 * the first sign-in answered a bare 503 and the only log line was `discovery_failed`
 * with `errorName: "rc"` — a class name the production build minified — so the operator
 * could not see what was wrong. The FIRST log line about it must name the expected and
 * the received issuer, the URL that failed, and the variable to fix.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { discoveryUnderPath } from '../helpers/quirk-provider.ts';
import { freePort, startProductionStack, type ProductionStack } from '../helpers/production-stack.ts';

let stack: ProductionStack;
let issuer: string;

before(async () => {
  const port = await freePort();
  issuer = `http://localhost:${port}/realms/main`;
  stack = await startProductionStack({
    idp: { port, extend: discoveryUnderPath('/realms/main') },
    env: { OIDC_ISSUER: `${issuer}/` },
  });
});
after(() => stack?.close());

function logLines(): Array<Record<string, unknown>> {
  return stack
    .serverStderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('a trailing-slash OIDC_ISSUER: the first log line names both issuers and the URL, no class name', async () => {
  const response = await fetch(`${stack.url}/auth/login`, { redirect: 'manual' });
  assert.equal(response.status, 503);
  assert.equal(((await response.json()) as { error: string }).error, 'idp_unavailable');

  const first = logLines().find((line) => line.level === 'warn' || line.level === 'error');
  assert.ok(first, `a warning or error was logged:\n${stack.serverStderr()}`);
  assert.equal(first.event, 'discovery_failed');
  assert.equal(first.expectedIssuer, `${issuer}/`);
  assert.equal(first.receivedIssuer, issuer);
  assert.equal(first.url, `${issuer}/.well-known/openid-configuration`);
  assert.match(String(first.problem), /OIDC_ISSUER/);
  assert.match(String(first.problem), new RegExp(`"${issuer}"`));
  assert.equal(first.errorName, undefined, 'no class name, minified or not');
});
