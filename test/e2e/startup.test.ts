/**
 * Configuration fails fast, from outside: `npm start` (scripts/start.ts) and a bare
 * `next start` (instrumentation.ts, as on Vercel) both refuse to serve with a bad
 * environment, exit non-zero, and list every problem at once, naming each variable.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { freePort } from '../helpers/ports.ts';

const BAD_ENV = {
  APP_BASE_URL: 'http://app.example.com', // http on a public host
  OIDC_ISSUER: 'http://id.example.com', // http without OIDC_ALLOW_INSECURE_HTTP
  OIDC_CLIENT_ID: 'web',
  OIDC_CLIENT_SECRET: 'a-client-secret-that-must-not-be-printed',
  SESSION_SECRETS: 'too-short',
  SESSION_SAMESITE: 'none',
};

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NEXT_TELEMETRY_DISABLED: '1', ...env } as unknown as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function assertListsEveryProblem(output: string): void {
  assert.match(output, /APP_BASE_URL must use https/);
  assert.match(output, /OIDC_ISSUER uses http: set OIDC_ALLOW_INSECURE_HTTP=true/);
  assert.match(output, /SESSION_SECRETS entry 1 is 9 characters; each must have 32\+/);
  assert.match(output, /SESSION_SAMESITE must be "strict" or "lax"/);
  assert.doesNotMatch(output, /a-client-secret-that-must-not-be-printed/);
  assert.doesNotMatch(output, /too-short/);
}

test('npm start refuses a bad configuration, listing every problem', async () => {
  const { code, output } = await run(['scripts/start.ts'], { ...BAD_ENV, PORT: String(await freePort()) });
  assert.equal(code, 1);
  assert.match(output, /Cloakroom cannot start/);
  assertListsEveryProblem(output);
});

test('npm start without any configuration names each required variable', async () => {
  const { code, output } = await run(['scripts/start.ts'], {});
  assert.equal(code, 1);
  for (const name of ['APP_BASE_URL', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'SESSION_SECRETS']) assert.match(output, new RegExp(`${name} is required`));
});

test('npm start never prints a value it refuses: a secret pasted into APP_BASE_URL or OIDC_ISSUER stays out of the output', async () => {
  const pasted = 'sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0';
  const { code, output } = await run(['scripts/start.ts'], {
    ...BAD_ENV,
    APP_BASE_URL: pasted,
    OIDC_ISSUER: `https://user:${pasted}@`,
    SESSION_SECRETS: 'a'.repeat(40),
    PORT: String(await freePort()),
  });
  assert.equal(code, 1);
  assert.match(output, /APP_BASE_URL must be an absolute http\(s\) origin/);
  assert.match(output, /OIDC_ISSUER must be an absolute https URL/);
  assert.match(output, /SESSION_SECRETS entry 1 is not random enough/);
  assert.doesNotMatch(output, new RegExp(pasted));
  assert.doesNotMatch(output, /a{40}/);
});

test('a bare next start (as on Vercel) refuses the same configuration', async () => {
  const port = await freePort();
  const { code, output } = await run(['node_modules/next/dist/bin/next', 'start', '--port', String(port)], BAD_ENV);
  assert.notEqual(code, 0);
  assert.match(output, /Cloakroom cannot start/);
  assertListsEveryProblem(output);
});
