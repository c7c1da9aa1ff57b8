/**
 * AUDIT L9: `sign_in_failed` logged its error code under the field `code`, which the log's
 * redaction (meant for OAuth authorization codes) masked: every sign-in failure read
 * `[redacted]`. The code is logged as `error`; the redaction still masks credentials and
 * no longer eats fields that only describe them.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../lib/errors.ts';
import { failure } from '../../lib/oidc/callback.ts';
import { log } from '../../lib/log.ts';

function captured(fn: () => void): Array<Record<string, unknown>> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

it('a failed sign-in logs its error code readably', () => {
  const [line] = captured(() => failure(new Request('http://localhost:3000/auth/callback'), new BrokerError('invalid_request', { publicMessage: 'bad state' })));
  assert.equal(line?.event, 'sign_in_failed');
  assert.equal(line?.error, 'invalid_request');
  assert.equal(line?.reason, 'bad state');
});

it('credentials are masked, fields that describe them are kept', () => {
  const [line] = captured(() =>
    log.warn('probe', {
      code: 'an-authorization-code',
      refreshToken: 'rt',
      access_token: 'at',
      code_verifier: 'v',
      clientSecret: 's',
      'set-cookie': 'c',
      errorCode: 'invalid_grant',
      cookieBytes: 7000,
      tokenCount: 2,
      secretIndex: 1,
    }),
  );
  for (const masked of ['code', 'refreshToken', 'access_token', 'code_verifier', 'clientSecret', 'set-cookie']) assert.equal(line?.[masked], '[redacted]', masked);
  assert.equal(line?.errorCode, 'invalid_grant');
  assert.equal(line?.cookieBytes, 7000);
  assert.equal(line?.tokenCount, 2);
  assert.equal(line?.secretIndex, 1);
});

it('log.security writes a warn line marked security: true', () => {
  process.env.LOG_LEVEL = 'info';
  const [line] = captured(() => log.security('refresh_token_reused', { route: '/api/demo' }));
  assert.equal(line?.level, 'warn');
  assert.equal(line?.security, true);
  assert.equal(line?.event, 'refresh_token_reused');
});
