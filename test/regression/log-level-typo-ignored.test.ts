/**
 * AUDIT L14: LOG_LEVEL is outside the broker's prefixes, so `LOG_LEVLE=debug` (or
 * `LOG_LEVEL=verbose`) was silently ignored and the broker logged at `info`. A name within
 * two edits of LOG_LEVEL is now refused as a typo, a bad level is refused, and the LOG_*
 * variables other tools read (LOG_FORMAT, LOG_DIR, …) are still left alone.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../lib/config/load.ts';

const ENV = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'AkF8ghWPcTrwdUlWSfwLoKao0hq+PpdFhx6zaSlvUp4=',
};

function problemsOf(extra: Record<string, string>): string[] {
  try {
    loadConfig({ ...ENV, ...extra });
    return [];
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
}

it('refuses misspellings of LOG_LEVEL, naming the variable meant', () => {
  for (const typo of ['LOG_LEVLE', 'LOGLEVEL', 'LOG_LVL', 'LOG_LEVELS', 'log_level']) {
    const problems = problemsOf({ [typo]: 'debug' });
    assert.deepEqual(problems, [`${typo} is not a variable the broker knows: did you mean LOG_LEVEL?`], typo);
  }
});

it('refuses a level that does not exist', () => {
  assert.deepEqual(problemsOf({ LOG_LEVEL: 'verbose' }), ['LOG_LEVEL must be one of debug, info, warn, error']);
});

it('leaves other tools\' LOG_ variables alone', () => {
  assert.deepEqual(problemsOf({ LOG_LEVEL: 'warn', LOG_FORMAT: 'json', LOG_DIR: '/var/log', LOGNAME: 'root' }), []);
});
