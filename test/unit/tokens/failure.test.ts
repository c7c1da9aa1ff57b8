/**
 * Sorting a failed refresh request (lib/tokens/failure.ts): whether the spent token may
 * ever be sent again. The errors are openid-client's own types, built as it builds them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as client from 'openid-client';
import { classifyRefreshFailure } from '../../../lib/tokens/failure.ts';

const fetchFailed = (code: string) => new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });

test('connection refused and DNS failures never reached the provider', () => {
  assert.equal(classifyRefreshFailure(fetchFailed('ECONNREFUSED')), 'not_sent');
  assert.equal(classifyRefreshFailure(fetchFailed('ENOTFOUND')), 'not_sent');
  const both = new TypeError('fetch failed', { cause: new AggregateError([fetchFailed('ECONNREFUSED').cause, fetchFailed('ECONNREFUSED').cause]) });
  assert.equal(classifyRefreshFailure(both), 'not_sent', 'happy eyeballs: every address refused');
  // The provider's agent gives up connecting at 3 s of the call's 10 s (lib/oidc/provider.ts):
  // packets dropped read as never sent, so the session is kept.
  assert.equal(classifyRefreshFailure(fetchFailed('UND_ERR_CONNECT_TIMEOUT')), 'not_sent');
  // A failed TLS handshake wrote no request: the provider's broken certificate ends no session.
  assert.equal(classifyRefreshFailure(fetchFailed('CERT_HAS_EXPIRED')), 'not_sent');
  assert.equal(classifyRefreshFailure(fetchFailed('ERR_TLS_CERT_ALTNAME_INVALID')), 'not_sent');
});

test("an error status is an answer with the undici package's Response class too (the provider's fetch)", async () => {
  const { Response: UndiciResponse } = await import('undici');
  const status503 = new client.ClientError('unexpected HTTP response status code', { cause: new UndiciResponse('down', { status: 503 }) });
  assert.equal(classifyRefreshFailure(status503), 'answered');
});

test('a reset or a timeout after sending is unknown', () => {
  assert.equal(classifyRefreshFailure(fetchFailed('UND_ERR_SOCKET')), 'unknown');
  assert.equal(classifyRefreshFailure(fetchFailed('ECONNRESET')), 'unknown');
  assert.equal(classifyRefreshFailure(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), 'unknown');
});

test('an error status is an answer (nothing issued); a 200 that failed validation is unknown', () => {
  const status503 = new client.ClientError('unexpected HTTP response status code', { cause: new Response('down', { status: 503 }) });
  assert.equal(classifyRefreshFailure(status503), 'answered');
  const status200 = new client.ClientError('failed to parse "response" body as JSON', { cause: new Response('{', { status: 200 }) });
  assert.equal(classifyRefreshFailure(status200), 'unknown');
  assert.equal(classifyRefreshFailure(new client.ClientError('unexpected JWT "aud" claim value', { cause: { claim: 'aud' } })), 'unknown');
});
