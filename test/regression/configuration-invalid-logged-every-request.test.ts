/**
 * AUDIT L14: with a refused configuration, every request re-parsed the environment and
 * wrote another `configuration_invalid` line listing every problem. The refusal is now
 * kept, and said once; every request still answers 500 `server_misconfigured`.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { resetConfigForTests } from '../../lib/config/load.ts';
import { endpoint } from '../../lib/http/handler.ts';

it('a refused configuration is logged once, and every request answers 500', async () => {
  for (const key of Object.keys(process.env)) if (/^(APP_|OIDC_|SESSION_|BFF_|REDIS_)/.test(key)) delete process.env[key];
  Object.assign(process.env, { APP_BASE_URL: 'http://localhost:3000', OIDC_ISSUER: 'https://id.example.com', LOG_LEVEL: 'info' });
  resetConfigForTests();

  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  const handle = endpoint(async () => new Response('never reached'));
  const answers: Response[] = [];
  try {
    for (let i = 0; i < 5; i++) answers.push(await handle(new Request('http://localhost:3000/auth/session')));
  } finally {
    process.stderr.write = write;
  }

  for (const answer of answers) {
    assert.equal(answer.status, 500);
    assert.deepEqual(await answer.json(), { error: 'server_misconfigured' });
  }
  const logged = lines.filter((l) => l.includes('"configuration_invalid"'));
  assert.equal(logged.length, 1, lines.join(''));
  assert.match(logged[0] as string, /OIDC_CLIENT_ID is required/);
});
