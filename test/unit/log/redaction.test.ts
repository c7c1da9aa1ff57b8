/**
 * lib/log.ts on pino: JSON lines on stderr, LOG_LEVEL honoured, the request id bound inside
 * a request, and both lines of defence: secret-named fields masked by their words, and
 * pino's redaction paths for objects that slip through a cast.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInRequestContext } from '../../../lib/http/request-context.ts';
import { isSecretField, log, REDACTED_PATHS } from '../../../lib/log.ts';

function captured(run: () => void): Array<Record<string, unknown>> {
  const chunks: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    run();
  } finally {
    process.stderr.write = write;
  }
  const text = chunks.join('');
  assert.ok(text === '' || text.endsWith('\n'), 'whole lines');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const SECRET = 'eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln';

describe('log lines', () => {
  it('are one JSON object per line with level, ISO time and event', () => {
    const [line] = captured(() => log.info('sign_in', { route: '/api/demo', count: 2 }));
    assert.equal(line?.level, 'info');
    assert.equal(line?.event, 'sign_in');
    assert.equal(line?.route, '/api/demo');
    assert.equal(line?.count, 2);
    assert.match(String(line?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(line?.pid, undefined, 'no pid/hostname noise');
  });

  it('honour LOG_LEVEL, as before (unknown values mean info)', () => {
    const before = process.env.LOG_LEVEL;
    try {
      process.env.LOG_LEVEL = 'warn';
      assert.deepEqual(captured(() => (log.info('a'), log.warn('b'), log.error('c'))).map((l) => l.event), ['b', 'c']);
      process.env.LOG_LEVEL = 'debug';
      assert.deepEqual(captured(() => log.debug('d')).map((l) => l.level), ['debug']);
      process.env.LOG_LEVEL = 'loud';
      assert.deepEqual(captured(() => (log.debug('e'), log.info('f'))).map((l) => l.event), ['f']);
    } finally {
      if (before === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = before;
    }
  });

  it('write security events at warn with security: true', () => {
    const [line] = captured(() => log.security('refresh_token_reuse', { reason: 'spent' }));
    assert.equal(line?.level, 'warn');
    assert.equal(line?.security, true);
  });

  it('carry the request id of the request they are written for, and none outside one', async () => {
    const lines = captured(() => {
      log.info('outside');
      runInRequestContext('req-7', () => log.info('inside'));
    });
    assert.equal(lines[0]?.requestId, undefined);
    assert.equal(lines[1]?.requestId, 'req-7');
    const later: Array<Record<string, unknown>> = [];
    await runInRequestContext('req-8', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      later.push(...captured(() => log.warn('after_await')));
    });
    assert.equal(later[0]?.requestId, 'req-8');
  });
});

describe('redaction', () => {
  it('masks fields whose names say they hold a credential (first line of defence)', () => {
    const fields = { refreshToken: SECRET, access_token: SECRET, code: SECRET, clientSecret: SECRET, 'set-cookie': SECRET, codeVerifier: SECRET, cookieBytes: 10, tokenCount: 2, errorCode: 'invalid_grant' };
    const [line] = captured(() => log.info('e', fields));
    for (const name of ['refreshToken', 'access_token', 'code', 'clientSecret', 'set-cookie', 'codeVerifier']) assert.equal(line?.[name], '[redacted]', name);
    assert.equal(line?.cookieBytes, 10);
    assert.equal(line?.tokenCount, 2);
    assert.equal(line?.errorCode, 'invalid_grant');
    assert.ok(isSecretField('idToken') && !isSecretField('route'));
  });

  it("masks credential names inside an object that slipped through a cast (pino's paths, second line)", () => {
    const smuggled = { headers: { cookie: SECRET, authorization: `Bearer ${SECRET}`, 'set-cookie': SECRET, dpop: SECRET, accept: 'text/html' }, body: { refresh_token: SECRET, id_token: SECRET, grant_type: 'refresh_token' } };
    const lines = captured(() => log.warn('oops', smuggled as unknown as Record<string, string>));
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(SECRET), text);
    const line = lines[0] as { headers: Record<string, string>; body: Record<string, string> };
    assert.equal(line.headers.cookie, '[redacted]');
    assert.equal(line.headers.authorization, '[redacted]');
    assert.equal(line.headers['set-cookie'], '[redacted]');
    assert.equal(line.headers.accept, 'text/html');
    assert.equal(line.body.grant_type, 'refresh_token');
    assert.ok(REDACTED_PATHS.includes('*.refresh_token'));
  });

  it('keeps a forged line break inside its JSON string (no log injection)', () => {
    const lines = captured(() => log.info('e', { reason: 'x\n{"level":"error","event":"forged"}' }));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.event, 'e');
  });
});
