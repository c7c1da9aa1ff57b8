/**
 * `classifyTokenEndpointError`: what a failed token-endpoint call means for the session
 * (RFC 6749 §5.2), for every shape providers send. The errors are openid-client's own
 * classes, built the way it builds them from an HTTP answer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as client from 'openid-client';
import { classifyTokenEndpointError, describeProviderError, isInvalidGrant } from '../../../lib/oidc/provider.ts';

const answer = (status: number, headers: Record<string, string> = {}) => new Response(null, { status, headers });
const bodyError = (status: number, error: string) =>
  new client.ResponseBodyError('server responded with an error in the response body', { cause: { error }, response: answer(status) });
const challenge = (status: number, parameters: Record<string, string>) =>
  new client.WWWAuthenticateChallengeError('challenge', { cause: [{ scheme: 'basic', parameters }], response: answer(status) });
/** What openid-client throws for a non-JSON or error-less answer: a coded error whose cause is the Response. */
const unconformAnswer = (status: number) => Object.assign(new Error('unexpected HTTP status code'), { code: 'OAUTH_RESPONSE_IS_NOT_CONFORM', cause: answer(status) });

test('any 4xx but 401, 408 and 429 means the grant is gone, whatever its shape', () => {
  for (const error of [bodyError(400, 'invalid_grant'), bodyError(400, 'invalid_request'), bodyError(400, 'invalid_scope'), unconformAnswer(400), unconformAnswer(404), bodyError(401, 'invalid_grant')]) {
    assert.equal(classifyTokenEndpointError(error), 'grant_gone', String((error as { error?: string }).error ?? (error as { code?: string }).code));
    assert.equal(isInvalidGrant(error), true);
  }
});

test('invalid_client, unauthorized_client and any other 401 are a client configuration error', () => {
  for (const error of [bodyError(401, 'invalid_client'), bodyError(400, 'invalid_client'), bodyError(400, 'unauthorized_client'), challenge(401, {}), challenge(401, { error: 'invalid_client' }), unconformAnswer(401)]) {
    assert.equal(classifyTokenEndpointError(error), 'client_misconfigured');
    assert.equal(isInvalidGrant(error), false);
  }
});

test('5xx, 408, 429, network failures, timeouts and unusable 2xx answers are an outage', () => {
  const network = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  for (const error of [bodyError(503, 'temporarily_unavailable'), unconformAnswer(500), unconformAnswer(502), unconformAnswer(408), unconformAnswer(429), bodyError(429, 'slow_down'), network, new DOMException('timeout', 'TimeoutError'), unconformAnswer(200), new Error('anything else')]) {
    assert.equal(classifyTokenEndpointError(error), 'outage');
  }
});

test('descriptions name codes and statuses, never a class name', () => {
  const network = new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
  assert.match(describeProviderError(network, 'https://id.example.com').problem, /could not be reached at https:\/\/id\.example\.com \(ECONNREFUSED\)/);
  const notFound = Object.assign(new Error('x'), { code: 'OAUTH_RESPONSE_IS_NOT_CONFORM', cause: answer(404) });
  const described = describeProviderError(notFound, 'https://id.example.com/realms/main');
  assert.equal(described.status, 404);
  assert.equal(described.url, 'https://id.example.com/realms/main/.well-known/openid-configuration');
  assert.match(described.problem, /HTTP 404 .*check OIDC_ISSUER/);
  assert.equal(describeProviderError(new DOMException('t', 'TimeoutError')).code, 'TIMEOUT');
});
