import * as client from 'openid-client';
import type { Config } from '../config/load.ts';
import { log } from '../log.ts';
import { describeProviderError, getProvider } from './provider.ts';

/**
 * Revokes refresh tokens at the provider (RFC 7009 §2.1, `token_type_hint=refresh_token`),
 * best effort: a provider that is down or refuses is logged (by problem, never the
 * token) and the caller goes on — the broker's own end of the session does not wait on
 * the provider's. Answers how many the provider accepted.
 */
export async function revokeRefreshTokens(config: Config, refreshTokens: readonly string[]): Promise<number> {
  if (refreshTokens.length === 0) return 0;
  let provider: client.Configuration;
  try {
    provider = await getProvider(config);
  } catch (error) {
    log.warn('revocation_failed', { problem: describeProviderError(error).problem, tokenCount: refreshTokens.length });
    return 0;
  }
  if (!provider.serverMetadata().revocation_endpoint) {
    log.warn('revocation_unsupported', { problem: 'the identity provider advertises no revocation endpoint (RFC 7009): revoked sessions\' refresh tokens stay valid there until they expire', tokenCount: refreshTokens.length });
    return 0;
  }
  const outcomes = await Promise.all(
    refreshTokens.map((refreshToken) =>
      client.tokenRevocation(provider, refreshToken, { token_type_hint: 'refresh_token' }).then(
        () => true,
        (error: unknown) => {
          const problem = describeProviderError(error);
          log.warn('revocation_failed', { problem: problem.problem, errorCode: problem.code });
          return false;
        },
      ),
    ),
  );
  return outcomes.filter(Boolean).length;
}
