/** BFF_FRONTEND_*: refused at start, each problem naming the variable and the fix. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../lib/config/load.ts';

const MINIMAL = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'BnZe+9nVLCHfjkxTpE8FFkesLF+742lRsemoN5y2ECs=',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...MINIMAL, ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return assert.fail('expected the configuration to be refused');
}

const root = mkdtempSync(join(tmpdir(), 'cloakroom-frontend-config-'));
const build = join(root, 'dist');
const empty = join(root, 'empty');
mkdirSync(build);
mkdirSync(empty);
writeFileSync(join(build, 'index.html'), '<!doctype html><title>app</title>');
after(() => rmSync(root, { recursive: true, force: true }));

describe('BFF_FRONTEND_* configuration', () => {
  test('unset: no frontend, the broker keeps its start page', () => {
    assert.equal(loadConfig(MINIMAL).frontend, undefined);
  });

  test('a build directory with index.html is taken, resolved through links', () => {
    const config = loadConfig({ ...MINIMAL, BFF_FRONTEND_DIR: build, BFF_FRONTEND_AUTH: 'required' });
    assert.equal(config.frontend?.dir, realpathSync(build));
    assert.equal(config.frontend?.auth, 'required');
    assert.equal(config.frontend?.upstream, undefined);
  });

  test('a missing directory, a file, or a folder without index.html is refused with the fix', () => {
    for (const dir of [join(root, 'nope'), join(build, 'index.html')]) {
      const [problem] = problemsOf({ BFF_FRONTEND_DIR: dir });
      assert.match(problem ?? '', /^BFF_FRONTEND_DIR is not a directory .*: give the folder of the app's build/);
    }
    const [problem] = problemsOf({ BFF_FRONTEND_DIR: empty });
    assert.match(problem ?? '', /^BFF_FRONTEND_DIR holds no index\.html: .*run the app's build first/);
  });

  test('DIR and UPSTREAM together are refused', () => {
    const problems = problemsOf({ BFF_FRONTEND_DIR: build, BFF_FRONTEND_UPSTREAM: 'http://localhost:5173' });
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? '', /BFF_FRONTEND_DIR and BFF_FRONTEND_UPSTREAM are both set/);
  });

  test('an upstream must be an http(s) origin', () => {
    assert.equal(loadConfig({ ...MINIMAL, BFF_FRONTEND_UPSTREAM: 'http://localhost:5173' }).frontend?.upstream?.origin, 'http://localhost:5173');
    for (const value of ['localhost:5173', 'ftp://localhost', 'http://localhost:5173/app', 'http://u:p@localhost:5173', 'http://localhost:5173/?x']) {
      const [problem] = problemsOf({ BFF_FRONTEND_UPSTREAM: value });
      assert.match(problem ?? '', /^BFF_FRONTEND_UPSTREAM must be an/, value);
    }
  });

  test('BFF_FRONTEND_AUTH: a bad value, or required without a frontend', () => {
    assert.match(problemsOf({ BFF_FRONTEND_DIR: build, BFF_FRONTEND_AUTH: 'yes' }).join('\n'), /BFF_FRONTEND_AUTH must be "none" or "required"/);
    assert.match(problemsOf({ BFF_FRONTEND_AUTH: 'required' }).join('\n'), /BFF_FRONTEND_AUTH=required needs a frontend: set BFF_FRONTEND_DIR or BFF_FRONTEND_UPSTREAM/);
  });

  test('BFF_FRONTEND_CSP must be a directive list', () => {
    assert.match(problemsOf({ BFF_FRONTEND_DIR: build, BFF_FRONTEND_CSP: 'connect-src a, b' }).join('\n'), /^BFF_FRONTEND_CSP has an invalid source/m);
    const config = loadConfig({ ...MINIMAL, BFF_FRONTEND_DIR: build, BFF_FRONTEND_CSP: 'connect-src https://sentry.example.com' });
    assert.deepEqual(config.frontend?.cspExtension, { 'connect-src': ['https://sentry.example.com'] });
  });

  test('every problem at once, beside the others', () => {
    const problems = problemsOf({ BFF_FRONTEND_DIR: empty, SESSION_SECRETS: 'short' });
    assert.ok(problems.some((p) => p.startsWith('BFF_FRONTEND_DIR')));
    assert.ok(problems.some((p) => p.startsWith('SESSION_SECRETS')));
  });
});
