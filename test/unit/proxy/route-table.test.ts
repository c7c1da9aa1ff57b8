import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_METHODS, matchRoute, parseRouteTable, type Route } from '../../../lib/proxy/route-table.ts';

function parsed(input: unknown): Route[] {
  const result = parseRouteTable(input);
  if (!result.ok) assert.fail(`expected a valid table, got:\n${result.problems.join('\n')}`);
  return result.routes;
}

function problemsOf(input: unknown): string[] {
  const result = parseRouteTable(input);
  if (result.ok) assert.fail('expected the table to be refused');
  return result.problems;
}

/** One route with the given fields over a valid minimum. */
function problemsOfRoute(fields: Record<string, unknown>): string[] {
  return problemsOf([{ path: '/api/x', upstream: 'https://x.internal', ...fields }]);
}

describe('parseRouteTable: a valid table', () => {
  it('applies the documented defaults', () => {
    const [route] = parsed([{ path: '/api/orders', upstream: 'https://orders.internal/v1' }]);
    assert.ok(route);
    assert.equal(route.path, '/api/orders');
    assert.ok(route.upstream instanceof URL);
    assert.equal(route.upstream.href, 'https://orders.internal/v1');
    assert.equal(route.auth, 'required');
    assert.deepEqual([...route.methods], [...DEFAULT_METHODS]);
    assert.deepEqual([...route.methods], ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
    assert.equal(route.resource, undefined);
    assert.deepEqual(route.scopes, []);
    assert.equal(route.timeoutMs, 30_000);
  });

  it('keeps every field of the CONTRACT.md example', () => {
    const [route] = parsed([
      {
        path: '/api/orders',
        upstream: 'https://orders.internal/v1',
        auth: 'optional',
        methods: ['GET', 'POST'],
        resource: 'https://orders.internal/',
        scopes: ['orders:read'],
        timeoutMs: 5000,
      },
    ]);
    assert.ok(route);
    assert.equal(route.auth, 'optional');
    assert.deepEqual([...route.methods], ['GET', 'POST']);
    assert.ok(route.methods.has('GET') && !route.methods.has('DELETE'));
    assert.equal(route.resource, 'https://orders.internal/');
    assert.deepEqual(route.scopes, ['orders:read']);
    assert.equal(route.timeoutMs, 5000);
  });

  it('accepts auth "none", the bounds of timeoutMs, /api itself and a custom method', () => {
    const routes = parsed([
      { path: '/api', upstream: 'http://localhost:3002', auth: 'none', timeoutMs: 1, methods: ['PROPFIND'] },
      { path: '/api/slow', upstream: 'http://localhost:3003', timeoutMs: 600_000 },
    ]);
    assert.equal(routes.length, 2);
  });

  it('normalises the upstream: trailing slashes dropped, default port dropped, origin-only kept', () => {
    const routes = parsed([
      { path: '/api/a', upstream: 'https://a.internal/v1/' },
      { path: '/api/b', upstream: 'https://b.internal:443/v1//' },
      // Cleartext off loopback only where no token travels (L5).
      { path: '/api/c', upstream: 'http://c.internal:8080/', auth: 'none' },
      { path: '/api/d', upstream: 'HTTP://D.Internal', auth: 'none' },
    ]);
    const byPath = new Map(routes.map((r) => [r.path, r.upstream.href]));
    assert.equal(byPath.get('/api/a'), 'https://a.internal/v1');
    assert.equal(byPath.get('/api/b'), 'https://b.internal/v1');
    assert.equal(byPath.get('/api/c'), 'http://c.internal:8080/');
    assert.equal(byPath.get('/api/d'), 'http://d.internal/');
  });

  it('returns frozen routes', () => {
    const [route] = parsed([{ path: '/api/orders', upstream: 'https://orders.internal', scopes: ['a'] }]);
    assert.ok(route);
    assert.ok(Object.isFrozen(route));
    assert.ok(Object.isFrozen(route.scopes));
    assert.throws(() => {
      (route as { auth: string }).auth = 'none';
    }, TypeError);
  });

  it('accepts an empty table (every /api call is then 404)', () => {
    assert.deepEqual(parsed([]), []);
  });

  it('accepts the demo route table shape', () => {
    const routes = parsed([
      { path: '/api/demo', upstream: 'http://localhost:3002', auth: 'required', resource: 'http://localhost:3002/', scopes: ['demo:read'] },
      { path: '/api/reports', upstream: 'http://localhost:3003', auth: 'required', resource: 'http://localhost:3003/', scopes: ['reports:read'] },
    ]);
    assert.equal(routes.length, 2);
  });
});

describe('parseRouteTable: refusals name the route, the field and the fix', () => {
  it('refuses a table that is not an array', () => {
    for (const input of [undefined, null, {}, '[]', 42, { path: '/api/x', upstream: 'https://x' }]) {
      const problems = problemsOf(input);
      assert.equal(problems.length, 1);
      assert.match(problems[0] ?? '', /^must be a JSON array of routes/);
    }
  });

  it('refuses an entry that is not an object', () => {
    const problems = problemsOf(['/api/x', null, 3, []]);
    assert.deepEqual(
      problems.map((p) => p.split(':')[0]),
      ['route[0]', 'route[1]', 'route[2]', 'route[3]'],
    );
    for (const problem of problems) assert.match(problem, /must be an object like \{"path"/);
  });

  it('requires path and upstream', () => {
    const problems = problemsOf([{}]);
    assert.deepEqual(problems, [
      'route[0].path: is required: the URL prefix to proxy, e.g. "/api/orders"',
      'route[0].upstream: is required: the base URL of the API, e.g. "https://orders.internal/v1"',
    ]);
  });

  it('gives the example message for a non-http(s) upstream', () => {
    assert.deepEqual(problemsOf([{ path: '/api/x', upstream: 'ftp://x' }]), [
      'route[0].upstream: must be an absolute http(s) URL (e.g. "https://orders.internal/v1"), got "ftp://x"',
    ]);
  });

  const badPaths: Array<[unknown, RegExp]> = [
    ['/orders', /must be "\/api" or start with "\/api\/"/],
    ['/apix', /must be "\/api" or start with "\/api\/"/],
    ['/API/x', /must be "\/api" or start with "\/api\/"/],
    ['api/x', /must be "\/api" or start with "\/api\/"/],
    ['', /must be "\/api" or start with "\/api\/"/],
    ['/api/', /must not end with "\/": write "\/api"/],
    ['/api/orders/', /must not end with "\/": write "\/api\/orders"/],
    ['/api//orders', /empty segment/],
    ['/api/./orders', /"\." or "\.\." segments/],
    ['/api/..', /"\." or "\.\." segments/],
    ['/api/%2e%2e', /"%" or "\\"/],
    ['/api/orders%2F', /"%" or "\\"/],
    ['/api\\orders', /"%" or "\\"/],
    ['/api/or ders', /found " "/],
    ['/api/orders?x=1', /found "\?"/],
    ['/api/orders#x', /found "#"/],
    ['/api/ördérs', /found "ö", "é"/],
    [42, /must be a string like "\/api\/orders", got number 42/],
  ];
  for (const [path, expected] of badPaths) {
    it(`refuses the path ${JSON.stringify(path)}`, () => {
      const problems = problemsOfRoute({ path });
      assert.ok(problems.length >= 1);
      assert.ok(problems.every((p) => p.startsWith('route[0].path: ')), problems.join('\n'));
      assert.ok(problems.some((p) => expected.test(p)), problems.join('\n'));
    });
  }

  it('lists every rule a path breaks, not just the first', () => {
    const problems = problemsOfRoute({ path: '/api//a/../b%2F/' });
    assert.equal(problems.length, 4, problems.join('\n'));
  });

  const badUpstreams: Array<[unknown, RegExp]> = [
    ['ftp://x', /must be an absolute http\(s\) URL/],
    ['file:///etc/passwd', /must be an absolute http\(s\) URL/],
    ['javascript:alert(1)', /must be an absolute http\(s\) URL/],
    ['orders.internal', /must be an absolute http\(s\) URL/],
    ['/v1', /must be an absolute http\(s\) URL/],
    ['', /must be an absolute http\(s\) URL/],
    ['https://', /must be an absolute http\(s\) URL/],
    ['https://user:pass@orders.internal', /must not contain credentials/],
    ['https://user@orders.internal', /must not contain credentials/],
    ['https://@orders.internal', /must not contain credentials/],
    ['https://orders.internal/v1?key=1', /must not contain a query/],
    ['https://orders.internal/v1?', /must not contain a query/],
    ['https://orders.internal/v1#x', /must not contain a fragment/],
    ['https://orders.internal/a//b', /empty path segment/],
    [' https://orders.internal', /spaces or control characters/],
    ['https://orders.internal/v1\n', /spaces or control characters/],
    ['https://orders.in\tternal', /spaces or control characters/],
    [['https://x'], /must be a string URL/],
  ];
  for (const [upstream, expected] of badUpstreams) {
    it(`refuses the upstream ${JSON.stringify(upstream)}`, () => {
      const problems = problemsOfRoute({ upstream });
      assert.ok(problems.length >= 1);
      assert.ok(problems.every((p) => p.startsWith('route[0].upstream: ')), problems.join('\n'));
      assert.ok(problems.some((p) => expected.test(p)), problems.join('\n'));
    });
  }

  const badFields: Array<[string, Record<string, unknown>, RegExp]> = [
    ['auth', { auth: 'yes' }, /^route\[0\]\.auth: must be "required", "optional" or "none", got "yes"$/],
    ['auth', { auth: 'Required' }, /^route\[0\]\.auth: must be "required", "optional" or "none"/],
    ['auth', { auth: true }, /^route\[0\]\.auth: must be "required", "optional" or "none", got boolean true$/],
    ['methods', { methods: [] }, /^route\[0\]\.methods: must list at least one method/],
    ['methods', { methods: 'GET' }, /^route\[0\]\.methods: must be an array of method names/],
    ['methods', { methods: ['get'] }, /^route\[0\]\.methods\[0\]: must be upper case .* write "GET", got "get"$/],
    ['methods', { methods: ['GET', 'Post'] }, /^route\[0\]\.methods\[1\]: must be upper case/],
    ['methods', { methods: ['GET POST'] }, /^route\[0\]\.methods\[0\]: must be an HTTP method name/],
    ['methods', { methods: [''] }, /^route\[0\]\.methods\[0\]: must be an HTTP method name/],
    ['methods', { methods: [1] }, /^route\[0\]\.methods\[0\]: must be a method name like "GET", got number 1$/],
    ['methods', { methods: ['TRACE'] }, /^route\[0\]\.methods\[0\]: TRACE may not be proxied/],
    ['methods', { methods: ['GET', 'CONNECT'] }, /^route\[0\]\.methods\[1\]: CONNECT may not be proxied/],
    ['resource', { resource: 'orders' }, /^route\[0\]\.resource: must be an absolute URI \(RFC 8707 §2\)/],
    ['resource', { resource: 'https://orders.internal/#x' }, /^route\[0\]\.resource: must not contain a fragment \(RFC 8707 §2\)/],
    ['resource', { resource: ['https://x'] }, /^route\[0\]\.resource: must be a string URL/],
    ['resource', { resource: null }, /^route\[0\]\.resource: must be a string URL .* got null$/],
    ['scopes', { scopes: 'orders:read' }, /^route\[0\]\.scopes: must be an array of scope strings/],
    ['scopes', { scopes: ['orders:read orders:write'] }, /^route\[0\]\.scopes\[0\]: must be one scope without spaces/],
    ['scopes', { scopes: ['ok', ''] }, /^route\[0\]\.scopes\[1\]: must be one scope/],
    ['scopes', { scopes: ['a"b'] }, /^route\[0\]\.scopes\[0\]: must be one scope/],
    ['timeoutMs', { timeoutMs: 0 }, /^route\[0\]\.timeoutMs: must be between 1 and 600000 milliseconds, got number 0$/],
    ['timeoutMs', { timeoutMs: 600_001 }, /^route\[0\]\.timeoutMs: must be between 1 and 600000/],
    ['timeoutMs', { timeoutMs: 1.5 }, /^route\[0\]\.timeoutMs: must be a whole number/],
    ['timeoutMs', { timeoutMs: '30000' }, /^route\[0\]\.timeoutMs: must be a number of milliseconds, got "30000"$/],
    ['timeoutMs', { timeoutMs: Number.NaN }, /^route\[0\]\.timeoutMs: must be a number/],
    ['unknown field', { timeout: 5 }, /^route\[0\]: unknown field "timeout": the fields are path, upstream, auth, methods, resource, scopes, timeoutMs, forwardHeaders, streaming, maxConcurrent, maxConcurrentPerSession, websocket, exchange, dpop$/],
    ['unknown fields', { Path: '/api', headers: {} }, /^route\[0\]: unknown fields "Path", "headers"/],
  ];
  for (const [field, fields, expected] of badFields) {
    it(`refuses ${field} ${JSON.stringify(fields)}`, () => {
      const problems = problemsOfRoute(fields);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] ?? '', expected);
    });
  }

  it('refuses a duplicate path, naming both routes', () => {
    const problems = problemsOf([
      { path: '/api/orders', upstream: 'https://a.internal' },
      { path: '/api/users', upstream: 'https://b.internal' },
      { path: '/api/orders', upstream: 'https://c.internal' },
    ]);
    assert.deepEqual(problems, [
      'route[2].path: "/api/orders" is already the path of route[0] (paths are compared ignoring letter case); each path may appear only once',
    ]);
  });

  it('lists ALL problems of ALL routes at once, in order', () => {
    const problems = problemsOf([
      { path: '/api/ok', upstream: 'https://ok.internal' },
      { path: '/orders/', upstream: 'ftp://x', auth: 'maybe', extra: 1 },
      { upstream: 'https://u:p@x.internal/?q', methods: ['get', 'TRACE'], timeoutMs: 0 },
      'not a route',
      { path: '/api/ok', upstream: 'https://dup.internal', scopes: [' '] },
    ]);
    const expectedPrefixes = [
      'route[1].path: must be "/api" or start with "/api/"',
      'route[1].path: must not end with "/"',
      'route[1].upstream: must be an absolute http(s) URL',
      'route[1].auth: must be "required", "optional" or "none"',
      'route[1]: unknown field "extra"',
      'route[2].path: is required',
      'route[2].upstream: must not contain credentials',
      'route[2].upstream: must not contain a query',
      'route[2].methods[0]: must be upper case',
      'route[2].methods[1]: TRACE may not be proxied',
      'route[2].timeoutMs: must be between 1 and 600000',
      'route[3]: must be an object',
      'route[4].scopes[0]: must be one scope',
      'route[4].path: "/api/ok" is already the path of route[0]',
    ];
    assert.equal(problems.length, expectedPrefixes.length, problems.join('\n'));
    expectedPrefixes.forEach((prefix, i) => assert.ok(problems[i]?.startsWith(prefix), `${problems[i]} should start with ${prefix}`));
  });

  it('cuts a very long bad value in its message', () => {
    const [problem] = problemsOfRoute({ upstream: `ftp://${'x'.repeat(10_000)}` });
    assert.ok(problem && problem.length < 250, problem);
  });
});

describe('matchRoute: the longest prefix at a segment boundary wins', () => {
  const routes = parsed([
    { path: '/api', upstream: 'https://root.internal' },
    { path: '/api/orders', upstream: 'https://orders.internal/v1' },
    { path: '/api/orders/archive', upstream: 'https://archive.internal' },
    { path: '/api/users', upstream: 'https://users.internal' },
  ]);
  const match = (pathname: string): [string, string] | undefined => {
    const found = matchRoute(routes, pathname);
    return found && [found.route.path, found.remainder];
  };

  it('sorts the parsed routes longest path first', () => {
    assert.deepEqual(
      routes.map((r) => r.path),
      ['/api/orders/archive', '/api/orders', '/api/users', '/api'],
    );
  });

  const cases: Array<[string, [string, string] | undefined]> = [
    ['/api/orders', ['/api/orders', '']],
    ['/api/orders/', ['/api/orders', '/']],
    ['/api/orders/x', ['/api/orders', '/x']],
    ['/api/orders/a/b', ['/api/orders', '/a/b']],
    ['/api/ordersx', ['/api', '/ordersx']],
    ['/api/orders-x/1', ['/api', '/orders-x/1']],
    ['/api/orders/archive', ['/api/orders/archive', '']],
    ['/api/orders/archive/2024', ['/api/orders/archive', '/2024']],
    ['/api/orders/archived', ['/api/orders', '/archived']],
    ['/api/orders//x', ['/api/orders', '//x']],
    ['/api/orders%2Fx', ['/api', '/orders%2Fx']],
    ['/api/orders/%2e%2e/users', ['/api/orders', '/%2e%2e/users']],
    ['/api/users', ['/api/users', '']],
    ['/api', ['/api', '']],
    ['/api/', ['/api', '/']],
    ['/apix', undefined],
    ['/ap', undefined],
    ['/', undefined],
    ['', undefined],
    ['/API/orders', undefined],
    ['/other/api/orders', undefined],
  ];
  for (const [pathname, expected] of cases) {
    it(`${JSON.stringify(pathname)} → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(match(pathname), expected);
    });
  }

  it('without a catch-all /api route, near misses match nothing', () => {
    const table = parsed([{ path: '/api/orders', upstream: 'https://orders.internal' }]);
    assert.equal(matchRoute(table, '/api/ordersx'), undefined);
    assert.equal(matchRoute(table, '/api/order'), undefined);
    assert.equal(matchRoute(table, '/api'), undefined);
    assert.equal(matchRoute(table, '/api/orders;x=1'), undefined);
    assert.equal(matchRoute([], '/api/orders'), undefined);
  });

  it('keeps the remainder raw (still percent-encoded)', () => {
    assert.deepEqual(match('/api/users/a%20b%2Fc?'), ['/api/users', '/a%20b%2Fc?']);
  });

  it('matches the longest prefix whatever order the table was written in', () => {
    const table = parsed([
      { path: '/api/a', upstream: 'https://a.internal' },
      { path: '/api/a/b/c', upstream: 'https://abc.internal' },
      { path: '/api/a/b', upstream: 'https://ab.internal' },
    ]);
    assert.equal(matchRoute(table, '/api/a/b/c/d')?.route.upstream.hostname, 'abc.internal');
    assert.equal(matchRoute(table, '/api/a/b/x')?.route.upstream.hostname, 'ab.internal');
    assert.equal(matchRoute(table, '/api/a/bc')?.route.upstream.hostname, 'a.internal');
  });
});

describe('parseRouteTable: messages do not leak secrets from the configuration', () => {
  it('masks userinfo and query of a bad upstream', () => {
    const problems = problemsOfRoute({ upstream: 'https://svc:hunter2@orders.internal/v1?api_key=s3cret#frag' });
    assert.equal(problems.length, 3, problems.join('\n'));
    for (const problem of problems) {
      assert.doesNotMatch(problem, /hunter2|s3cret|svc:/);
      assert.match(problem, /"https:\/\/\*\*\*@orders\.internal\/v1\?…#…"/);
    }
  });
});

describe('parseRouteTable: no bearer token over cleartext (L5)', () => {
  for (const auth of ['required', 'optional'] as const) {
    it(`refuses an http upstream off loopback on auth "${auth}", naming the route, the variable and the fix`, () => {
      const problems = problemsOf([{ path: '/api/orders', upstream: 'http://orders.internal/v1', auth }]).concat(
        problemsOf([{ path: '/api/orders', upstream: 'http://10.0.0.7:8080', auth }]),
      );
      assert.equal(problems.length, 2, problems.join('\n'));
      for (const problem of problems) {
        assert.match(problem, /^route\[0\]\.upstream: the route "\/api\/orders"/);
        assert.match(problem, /cleartext http/);
        assert.match(problem, /BFF_ALLOW_INSECURE_UPSTREAM=true/);
        assert.match(problem, /https upstream/);
        assert.doesNotMatch(problem, /orders\.internal|10\.0\.0\.7/, 'the URL is not echoed');
      }
    });
  }

  it('accepts http on loopback, on auth "none", and with BFF_ALLOW_INSECURE_UPSTREAM', () => {
    for (const upstream of ['http://localhost:3002', 'http://127.0.0.1:9', 'http://127.8.9.10', 'http://[::1]:8080', 'http://api.localhost']) {
      assert.equal(parsed([{ path: '/api/x', upstream }]).length, 1, upstream);
    }
    assert.equal(parsed([{ path: '/api/x', upstream: 'http://orders.internal', auth: 'none' }]).length, 1);
    const table = parseRouteTable([{ path: '/api/x', upstream: 'http://orders.internal' }], { allowInsecureUpstream: true });
    assert.ok(table.ok);
  });

  it('does not take a host that merely starts like loopback for loopback', () => {
    for (const upstream of ['http://127.0.0.1.evil.example', 'http://localhost.evil.example', 'http://0x7f000001.example']) {
      assert.equal(problemsOf([{ path: '/api/x', upstream }]).length, 1, upstream);
    }
  });
});

describe('parseRouteTable: forwardHeaders (M9)', () => {
  it('accepts header names, keeps them lower case, and drops the built-in ones', () => {
    const [route] = parsed([{ path: '/api/x', upstream: 'https://x.internal', forwardHeaders: ['X-Tenant', 'x-app-version', 'Accept'] }]);
    assert.deepEqual([...(route?.forwardHeaders ?? [])], ['x-tenant', 'x-app-version']);
  });

  it('defaults to none, and streaming and the concurrency caps to their defaults', () => {
    const [route] = parsed([{ path: '/api/x', upstream: 'https://x.internal' }]);
    assert.equal(route?.forwardHeaders.size, 0);
    assert.equal(route?.streaming, false);
    assert.equal(route?.maxConcurrent, 100);
    assert.equal(route?.maxConcurrentPerSession, 64);
  });

  const payloads = JSON.parse(readFileSync(new URL('../../fixtures/header-payloads.json', import.meta.url), 'utf8')) as {
    neverToUpstream: Array<[string, string]>;
  };
  for (const [name] of payloads.neverToUpstream) {
    it(`refuses ${name} in forwardHeaders: it may never be forwarded`, () => {
      const problems = problemsOf([{ path: '/api/x', upstream: 'https://x.internal', forwardHeaders: [name] }]);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0] ?? '', /^route\[0\]\.forwardHeaders\[0\]: ".*" may never be forwarded: .*; remove it$/);
    });
  }

  it('refuses what is not a header name', () => {
    for (const bad of ['x tenant', 'x-a:b', '', 'ü']) {
      assert.equal(problemsOf([{ path: '/api/x', upstream: 'https://x.internal', forwardHeaders: [bad] }]).length, 1, bad);
    }
    assert.match(problemsOf([{ path: '/api/x', upstream: 'https://x.internal', forwardHeaders: 'x-a' }])[0] ?? '', /must be an array of header names/);
  });

  it('refuses caps outside their bounds and a non-boolean streaming', () => {
    const problems = problemsOf([{ path: '/api/x', upstream: 'https://x.internal', maxConcurrent: 0, maxConcurrentPerSession: 1.5, streaming: 'yes' }]);
    assert.equal(problems.length, 3, problems.join('\n'));
  });
});

describe('parseRouteTable: paths a lenient server would read as another (L4)', () => {
  it('refuses two paths that differ only in letter case', () => {
    const problems = problemsOf([
      { path: '/api/orders', upstream: 'https://a.internal' },
      { path: '/api/Orders', upstream: 'https://b.internal' },
    ]);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /already the path of route\[0\] \(paths are compared ignoring letter case\)/);
  });

  it('refuses a segment ending in "." or holding ";"', () => {
    for (const path of ['/api/orders.', '/api/v1./orders', '/api/orders;v=1']) {
      const problems = problemsOf([{ path, upstream: 'https://a.internal' }]);
      assert.ok(problems.some((p) => /segment ending in "\." or holding ";"/.test(p)), `${path}: ${problems.join(' | ')}`);
    }
  });
});
