/**
 * The providers teams actually run, imitated by the real oidc-provider (issue 13), part 1:
 * loose metadata and answers. For each quirk, sign-in, refresh, logout and back-channel
 * logout behave as CONTRACT.md says (test/helpers/quirk-contract.ts). One provider for
 * the group, started once; quirks are switched per test (test/helpers/quirk-provider.ts
 * says what each one imitates). The matrix is split over three files so that the runner
 * runs them side by side: quirks-refresh.test.ts, quirks-identity.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contractHolds, group, logsOf, metadataOf, withQuirks } from '../../helpers/quirk-contract.ts';

group('loose metadata and answers (one provider)', {}, (get) => {
  test('the unmodified provider (baseline)', async () => {
    withQuirks(get(), {});
    await contractHolds(get());
  });
  test('no iss in the authorization response, none advertised (RFC 9207 optional)', async () => {
    withQuirks(get(), { noIssInAuthorizationResponse: true });
    await contractHolds(get());
  });
  test('lowercase token_type "bearer"', async () => {
    withQuirks(get(), { lowercaseTokenType: true });
    await contractHolds(get());
  });
  test('no revocation endpoint: logout still ends the session, and says revocation was not possible', async () => {
    withQuirks(get(), { noRevocationEndpoint: true });
    const lines = await logsOf(() => contractHolds(get(), { revocation: false }));
    const line = lines.find((l) => l.event === 'revocation_unsupported');
    assert.ok(line, 'a log line says the refresh token could not be revoked');
    assert.match(String(line.problem), /offline_access/);
  });
  test('"//" in the endpoint URLs', async () => {
    withQuirks(get(), { doubleSlashEndpoints: true });
    const metadata = await metadataOf(get());
    assert.match(String(metadata.token_endpoint), /^http:\/\/localhost:\d+\/\/token$/);
    await contractHolds(get());
  });
  test('ID tokens with auth_time: 0', async () => {
    withQuirks(get(), { authTimeZero: true });
    await contractHolds(get());
  });
  test('refresh answers without an ID token', async () => {
    withQuirks(get(), { refreshWithoutIdToken: true });
    await contractHolds(get());
  });
});

