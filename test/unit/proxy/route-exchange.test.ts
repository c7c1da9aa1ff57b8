/**
 * The route option `"exchange": {"audience", "scope"}` (RFC 8693 per route): both strings
 * validated, every problem named with the route and the field, and the start-time check
 * that the provider offers the grant (lib/oidc/capabilities.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRouteTable, type Route } from '../../../lib/proxy/route-table.ts';
import { providerCapabilityProblems, TOKEN_EXCHANGE_GRANT } from '../../../lib/oidc/capabilities.ts';
import type { Config } from '../../../lib/config/load.ts';

const base = { path: '/api/orders', upstream: 'https://orders.internal/v1' };

function problems(fields: Record<string, unknown>): string[] {
  const result = parseRouteTable([{ ...base, ...fields }]);
  if (result.ok) assert.fail('expected the table to be refused');
  return result.problems;
}

describe('route option exchange', () => {
  it('is absent by default', () => {
    const result = parseRouteTable([base]);
    assert.ok(result.ok);
    assert.equal(result.routes[0].exchange, undefined);
  });

  it('keeps audience and scope exactly as given, frozen', () => {
    const result = parseRouteTable([{ ...base, exchange: { audience: 'https://orders.internal/', scope: 'orders:read orders:write' } }]);
    assert.ok(result.ok, JSON.stringify(result));
    const { exchange } = result.routes[0];
    assert.deepEqual(exchange, { audience: 'https://orders.internal/', scope: 'orders:read orders:write' });
    assert.ok(Object.isFrozen(exchange));
  });

  const refusals: Array<[string, unknown, RegExp]> = [
    ['not an object', 'orders', /^route\[0\]\.exchange: must be an object like \{"audience"/],
    ['no audience', { scope: 'orders:read' }, /^route\[0\]\.exchange\.audience: must be a string naming the API/],
    ['no scope', { audience: 'orders' }, /^route\[0\]\.exchange\.scope: must be a space-separated scope string/],
    ['empty audience', { audience: '', scope: 'a' }, /^route\[0\]\.exchange\.audience: must be a non-empty audience/],
    ['audience with a space', { audience: 'orders api', scope: 'a' }, /^route\[0\]\.exchange\.audience: must be a non-empty audience without spaces/],
    ['audience with a control character', { audience: 'orders\napi', scope: 'a' }, /exchange\.audience: must be a non-empty audience/],
    ['empty scope', { audience: 'orders', scope: '' }, /^route\[0\]\.exchange\.scope: must be scope-tokens separated by single spaces/],
    ['double space in scope', { audience: 'orders', scope: 'a  b' }, /exchange\.scope: must be scope-tokens/],
    ['quote in scope', { audience: 'orders', scope: 'a"b' }, /exchange\.scope: must be scope-tokens/],
    ['numbers', { audience: 1, scope: 2 }, /exchange\.audience: must be a string/],
    ['unknown field', { audience: 'orders', scope: 'a', resource: 'x' }, /^route\[0\]\.exchange: unknown field "resource": the fields are audience, scope$/],
  ];
  for (const [name, exchange, expected] of refusals) {
    it(`refuses ${name}`, () => {
      const found = problems({ exchange });
      assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(found)} should match ${expected}`);
    });
  }

  it('refuses exchange on a route without a session token (auth none)', () => {
    const found = problems({ auth: 'none', exchange: { audience: 'orders', scope: 'a' } });
    assert.ok(found.some((p) => /^route\[0\]\.exchange: the route "\/api\/orders" has auth "none"/.test(p)), JSON.stringify(found));
  });

  it('lists every problem at once', () => {
    const found = problems({ exchange: { audience: '', scope: 'a  b' } });
    assert.equal(found.length, 2, JSON.stringify(found));
  });
});

describe('providerCapabilityProblems: a provider without the grant is a configuration error', () => {
  const routes = (parseRouteTable([
    { ...base, exchange: { audience: 'orders', scope: 'orders:read' } },
    { path: '/api/plain', upstream: 'https://plain.internal' },
  ]) as { ok: true; routes: Route[] }).routes;
  const config = { routes } as unknown as Config;

  it('names the route and the fix when the grant is missing', () => {
    const found = providerCapabilityProblems(config, ['authorization_code', 'refresh_token']);
    assert.equal(found.length, 1);
    assert.match(found[0], /route "\/api\/orders" has "exchange"/);
    assert.match(found[0], /grant_types_supported/);
    assert.match(found[0], /remove "exchange" from the route/);
  });

  it('counts a provider that omits grant_types_supported as lacking it', () => {
    assert.equal(providerCapabilityProblems(config, undefined).length, 1);
  });

  it('is satisfied when the provider lists the grant', () => {
    assert.deepEqual(providerCapabilityProblems(config, ['authorization_code', TOKEN_EXCHANGE_GRANT]), []);
  });

  it('asks nothing of the provider when no route exchanges', () => {
    const plain = { routes: routes.filter((r) => !r.exchange) } as unknown as Config;
    assert.deepEqual(providerCapabilityProblems(plain, []), []);
  });
});
