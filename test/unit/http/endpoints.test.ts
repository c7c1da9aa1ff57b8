/**
 * One table of endpoints for both hosts (lib/http/endpoints.ts): every app/ route file
 * reads its handlers from it, every entry has a route file (so `next start`/Vercel and the
 * front door answer the same paths), and the front door's lookup picks what Next.js's
 * file routing would.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ENDPOINTS, findEndpoint, PREFIX_ENDPOINTS, ROUTE_METHODS, routeHandlers } from '../../../lib/http/endpoints.ts';

const APP = fileURLToPath(new URL('../../../app/', import.meta.url));

function routeFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return routeFiles(path);
    return name === 'route.ts' ? [path] : [];
  });
}

/** `app/auth/login/route.ts` → `/auth/login`; a catch-all segment (`[...path]`, `[[...path]]`) → its prefix. */
function pathOf(file: string): string {
  const segments = relative(APP, file).split(sep).slice(0, -1);
  const fixed = segments.filter((segment) => !segment.startsWith('['));
  return `/${fixed.join('/')}`;
}

describe('lib/http/endpoints.ts: the one table both hosts read', () => {
  const files = routeFiles(APP);

  it('every app/ route file exports its handlers from the table, nothing of its own', () => {
    assert.ok(files.length >= 10);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const path = pathOf(file);
      assert.ok(text.includes(`routeHandlers('${path}')`), `${relative(APP, file)} reads routeHandlers('${path}')`);
      assert.match(text, /export const dynamic = 'force-dynamic';/, relative(APP, file));
      assert.match(text, /export const \{ GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS \} = routeHandlers\(/, relative(APP, file));
    }
  });

  it('every table entry has its route file, so next start and Vercel answer it too', () => {
    const served = new Set(files.map(pathOf));
    for (const path of [...Object.keys(ENDPOINTS), ...PREFIX_ENDPOINTS.map(([prefix]) => prefix)]) {
      assert.ok(served.has(path), `app/${path.slice(1)}/route.ts is missing`);
    }
  });

  it('fills every method a route file can export', () => {
    for (const path of Object.keys(ENDPOINTS)) {
      const handlers = routeHandlers(path);
      for (const method of ROUTE_METHODS) assert.equal(typeof handlers[method], 'function', `${path} ${method}`);
    }
    assert.throws(() => routeHandlers('/auth/nothing'), /no endpoint/);
  });

  it('looks paths up as Next.js routes them: exact first, then a catch-all at a segment boundary', () => {
    assert.equal(findEndpoint('/ops/revoke'), ENDPOINTS['/ops/revoke']);
    assert.equal(findEndpoint('/ops/else'), PREFIX_ENDPOINTS.find(([p]) => p === '/ops')?.[1]);
    assert.equal(findEndpoint('/api'), PREFIX_ENDPOINTS.find(([p]) => p === '/api')?.[1]);
    assert.equal(findEndpoint('/api/demo/x'), PREFIX_ENDPOINTS.find(([p]) => p === '/api')?.[1]);
    for (const page of ['/', '/apix', '/auth', '/auth/login/x', '/_next/static/x.js', '/healthzz']) {
      assert.equal(findEndpoint(page), undefined, page);
    }
  });

  it('answers a method not named with the contract\'s 405 and Allow', async () => {
    const response = await routeHandlers('/auth/logout').GET(new Request('http://localhost/auth/logout'));
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'POST');
    assert.deepEqual(await response.json(), { error: 'method_not_allowed' });
  });
});
