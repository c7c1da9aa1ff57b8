/**
 * Anti-forgery on the proxy (CONTRACT.md: "needs `X-CSRF: 1` on every method; a
 * cross-site `Sec-Fetch-Site` or foreign `Origin` is refused too"). Every refusal is
 * 403 `csrf` with no CORS grant in the answer, no cookie change, and nothing at the API
 * — also for a route that needs no session and for a path that matches no route.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startStack, type Stack } from '../../helpers/stack.ts';
import { rawRequest } from '../../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

type Pair = [string, string];

let stack: Stack;
let up: TestUpstream;
let cookie: string;

before(async () => {
  up = await startUpstream();
  stack = await startStack({
    env: {
      BFF_ROUTES: JSON.stringify([
        { path: '/api/private', upstream: `${up.url}/p`, auth: 'required' },
        { path: '/api/open', upstream: `${up.url}/o`, auth: 'none' },
      ]),
    },
  });
  const browser = stack.newBrowser();
  assert.equal((await browser.signIn('alice')).status, 303);
  cookie = browser.cookieHeader();
});

after(async () => {
  await stack?.close();
  await up?.close();
});

function corsHeaders(headers: IncomingHttpHeaders): string[] {
  return Object.keys(headers).filter((name) => name.startsWith('access-control-'));
}

async function assertRefused(method: string, path: string, headers: Pair[], body?: string): Promise<void> {
  up.reset();
  const answer = await rawRequest(stack.broker.url, { method, path, headers: [['Cookie', cookie], ...headers], body });
  const label = `${method} ${path} ${JSON.stringify(headers)}`;
  assert.equal(answer.status, 403, `${label} answered ${answer.status}`);
  if (method !== 'HEAD') assert.equal((JSON.parse(answer.body.toString()) as { error: string }).error, 'csrf', label);
  assert.equal(answer.headers['cache-control'], 'no-store');
  assert.deepEqual(corsHeaders(answer.headers), [], `${label}: no CORS grant`);
  assert.equal(answer.headers['set-cookie'], undefined, `${label}: the session cookie is left alone`);
  assert.deepEqual(up.records, [], `${label}: the API saw something`);
}

async function assertAccepted(method: string, path: string, headers: Pair[]): Promise<void> {
  up.reset();
  const answer = await rawRequest(stack.broker.url, { method, path, headers: [['Cookie', cookie], ...headers], body: method === 'GET' ? undefined : 'x' });
  assert.equal(answer.status, 200, `${method} ${path} ${JSON.stringify(headers)} answered ${answer.status}`);
  assert.equal(up.records.length, 1);
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

describe('X-CSRF: 1 is required on every method', () => {
  for (const method of METHODS) {
    for (const path of ['/api/private/x', '/api/open/x']) {
      test(`${method} ${path} without X-CSRF`, async () => {
        await assertRefused(method, path, [['Sec-Fetch-Site', 'same-origin']], method === 'GET' || method === 'HEAD' ? undefined : 'x');
      });
    }
  }

  for (const value of ['0', 'true', '', '11', '1, 1', 'yes', '%31']) {
    test(`X-CSRF: ${JSON.stringify(value)}`, async () => {
      await assertRefused('POST', '/api/private/x', [['X-CSRF', value], ['Sec-Fetch-Site', 'same-origin']], 'x');
    });
  }

  test('checked before routing: a path without a route is 403 too, not 404', async () => {
    await assertRefused('GET', '/api/nothing/x', []);
  });
});

describe('cross-site requests are refused even with X-CSRF: 1', () => {
  const cases: Array<[string, Pair[]]> = [
    ['Sec-Fetch-Site: cross-site', [['Sec-Fetch-Site', 'cross-site']]],
    ['Sec-Fetch-Site: same-site (a sibling subdomain is another application)', [['Sec-Fetch-Site', 'same-site']]],
    ['Sec-Fetch-Site: an unknown value', [['Sec-Fetch-Site', 'whatever']]],
    ['a foreign Origin', [['Origin', 'https://evil.example']]],
    ['a foreign Origin with a same-origin Sec-Fetch-Site', [['Origin', 'https://evil.example'], ['Sec-Fetch-Site', 'same-origin']]],
    ['Origin: null (sandboxed frame, data: URL)', [['Origin', 'null']]],
    ['the same host on another scheme', [['Origin', 'https://localhost']]],
    ['the same host on another port', [['Origin', 'http://localhost:1']]],
    ['a look-alike origin', [['Origin', 'http://localhost.evil.example']]],
  ];
  for (const [name, headers] of cases) {
    for (const method of ['GET', 'POST', 'DELETE']) {
      test(`${method} with ${name}`, async () => {
        await assertRefused(method, '/api/private/x', [['X-CSRF', '1'], ...headers], method === 'GET' ? undefined : 'x');
      });
    }
  }

  test('a CORS preflight from a foreign origin: 403, no Access-Control-* grant, nothing forwarded', async () => {
    await assertRefused('OPTIONS', '/api/private/x', [
      ['Origin', 'https://evil.example'],
      ['Sec-Fetch-Site', 'cross-site'],
      ['Access-Control-Request-Method', 'DELETE'],
      ['Access-Control-Request-Headers', 'x-csrf, content-type'],
    ]);
    await assertRefused('OPTIONS', '/api/open/x', [
      ['Origin', 'https://evil.example'],
      ['Access-Control-Request-Method', 'POST'],
      ['Access-Control-Request-Headers', 'x-csrf'],
    ]);
  });

  test('the broker origin without X-CSRF is still refused', async () => {
    await assertRefused('POST', '/api/private/x', [['Origin', stack.broker.url]], 'x');
  });
});

describe('what passes', () => {
  test('X-CSRF: 1 with same-origin fetch metadata', async () => {
    for (const method of METHODS) await assertAccepted(method, '/api/private/x', [['X-CSRF', '1'], ['Sec-Fetch-Site', 'same-origin']]);
  });

  test('X-CSRF: 1 with the app Origin', async () => {
    await assertAccepted('POST', '/api/private/x', [['X-CSRF', '1'], ['Origin', stack.broker.url]]);
  });

  test('X-CSRF: 1 from a client that sends no fetch metadata (curl, a server)', async () => {
    await assertAccepted('GET', '/api/private/x', [['X-CSRF', '1']]);
  });

  test('a same-origin answer carries no CORS grant either', async () => {
    up.reset();
    const answer = await rawRequest(stack.broker.url, {
      path: '/api/open/x',
      headers: [['X-CSRF', '1'], ['Origin', stack.broker.url]],
    });
    assert.equal(answer.status, 200);
    assert.deepEqual(corsHeaders(answer.headers), []);
  });
});
