import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, getConfig, loadConfig, resetConfigForTests, type Config } from '../../../lib/config/load.ts';
import { jwkThumbprint } from '../../../lib/config/client-keys.ts';

// `openssl rand -base64 32`: fixed so that the ids below are stable between runs.
const SECRET_A = 'BnZe+9nVLCHfjkxTpE8FFkesLF+742lRsemoN5y2ECs=';
const SECRET_B = 'soIBuchGopVIn6YJYNt1nScDIZBo+TtehWayhMkOKhY=';

/** The smallest environment `npm start` accepts. */
const MINIMAL = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: SECRET_A,
} as const;

function load(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...MINIMAL, ...overrides });
}

/** The problems of an environment that must be refused. */
function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.ok(error.problems.length > 0);
    for (const p of error.problems) assert.ok(error.message.includes(p), 'the message lists every problem');
    return error.problems;
  }
  return assert.fail('expected the configuration to be refused');
}

/** Asserts exactly one problem mentions `variable` and returns it. */
function problemNaming(problems: string[], variable: string): string {
  const matching = problems.filter((p) => p.includes(variable));
  assert.equal(matching.length, 1, `expected one problem naming ${variable}, got:\n${problems.join('\n')}`);
  return matching[0] as string;
}

describe('loadConfig: a minimal valid environment', () => {
  it('applies every documented default', () => {
    const config = load();
    assert.equal(config.appOrigin, 'http://localhost:3000');
    assert.equal(config.redirectUri, 'http://localhost:3000/auth/callback');
    assert.equal(config.secureCookies, false);
    assert.equal(config.port, 3000);
    assert.deepEqual(config.oidc, {
      issuer: 'https://id.example.com',
      clientId: 'cloakroom',
      clientSecret: 'client-secret',
      clientAuth: 'client_secret_basic',
      clientPrivateKey: undefined,
      clientKeys: [],
      scopes: config.oidc.scopes,
      prompt: 'consent',
      allowInsecureHttp: false,
      resources: config.oidc.resources,
    });
    assert.equal(config.session.sameSite, 'strict');
    assert.equal(config.session.idleTimeout, 86_400);
    assert.equal(config.session.absoluteTimeout, 604_800);
    assert.deepEqual(config.tokens, { refreshSkew: 60, refreshGrace: 30, lockLease: 5 });
  });

  it('requests OIDC_SCOPES plus the demo routes\' scopes, and their resources', () => {
    const config = load();
    assert.deepEqual(config.oidc.scopes.split(' ').sort(), ['demo:read', 'email', 'offline_access', 'openid', 'profile', 'reports:read']);
    assert.deepEqual([...config.oidc.resources].sort(), ['http://localhost:3002/', 'http://localhost:3003/']);
    assert.deepEqual(config.routes.map((r) => r.path).sort(), ['/api/demo', '/api/reports']);
  });

  it('does not repeat a scope that a route also asks for', () => {
    const config = load({ OIDC_SCOPES: 'openid demo:read' });
    assert.deepEqual(config.oidc.scopes.split(' ').sort(), ['demo:read', 'openid', 'reports:read']);
  });

  it('strips a trailing slash of APP_BASE_URL from the origin', () => {
    assert.equal(load({ APP_BASE_URL: 'http://localhost:3000/' }).redirectUri, 'http://localhost:3000/auth/callback');
  });

  it('accepts the loopback addresses over http', () => {
    assert.equal(load({ APP_BASE_URL: 'http://127.0.0.1:8080' }).appOrigin, 'http://127.0.0.1:8080');
    assert.equal(load({ APP_BASE_URL: 'http://[::1]:8080' }).appOrigin, 'http://[::1]:8080');
  });

  it('parses the numeric variables', () => {
    const config = load({ PORT: '8443', SESSION_IDLE_TIMEOUT: '600', SESSION_ABSOLUTE_TIMEOUT: '3600', SESSION_SAMESITE: 'lax' });
    assert.equal(config.port, 8443);
    assert.equal(config.session.idleTimeout, 600);
    assert.equal(config.session.absoluteTimeout, 3600);
    assert.equal(config.session.sameSite, 'lax');
  });
});

describe('loadConfig: https', () => {
  it('an https APP_BASE_URL means Secure cookies', () => {
    const config = load({ APP_BASE_URL: 'https://app.example.com', BFF_ROUTES: '[]' });
    assert.equal(config.secureCookies, true);
    assert.equal(config.appOrigin, 'https://app.example.com');
    assert.equal(config.redirectUri, 'https://app.example.com/auth/callback');
  });
});

describe('loadConfig: every problem at once', () => {
  it('lists a missing APP_BASE_URL, a short secret, a bad SESSION_SAMESITE and an http issuer together', () => {
    const problems = problemsOf({
      OIDC_ISSUER: 'http://id.example.com',
      OIDC_CLIENT_ID: 'cloakroom',
      OIDC_CLIENT_SECRET: 'client-secret',
      SESSION_SECRETS: 'too-short',
      SESSION_SAMESITE: 'none',
    });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problemNaming(problems, 'APP_BASE_URL'), /required/);
    assert.match(problemNaming(problems, 'SESSION_SECRETS'), /entry 1 is 9 characters; each must have 32\+/);
    assert.match(problemNaming(problems, 'SESSION_SAMESITE'), /"strict" or "lax"/);
    assert.match(problemNaming(problems, 'OIDC_ISSUER'), /OIDC_ALLOW_INSECURE_HTTP=true/);
  });

  it('an empty environment names each required variable', () => {
    const problems = problemsOf({});
    for (const variable of ['APP_BASE_URL', 'OIDC_ISSUER', 'OIDC_CLIENT_ID', 'OIDC_CLIENT_SECRET', 'SESSION_SECRETS']) {
      problemNaming(problems, variable);
    }
    assert.equal(problems.length, 5, problems.join('\n'));
  });

  it('names each bad number', () => {
    const problems = problemsOf({ ...MINIMAL, PORT: '70000', SESSION_IDLE_TIMEOUT: '1h', TOKEN_REFRESH_SKEW: '0' });
    assert.match(problemNaming(problems, 'PORT'), /between 1 and 65535/);
    assert.match(problemNaming(problems, 'SESSION_IDLE_TIMEOUT'), /whole number of seconds/);
    assert.match(problemNaming(problems, 'TOKEN_REFRESH_SKEW'), /between 1 and/);
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  it('refuses an idle timeout longer than the absolute one', () => {
    const problems = problemsOf({ ...MINIMAL, SESSION_IDLE_TIMEOUT: '7200', SESSION_ABSOLUTE_TIMEOUT: '3600' });
    assert.deepEqual(problems, ['SESSION_IDLE_TIMEOUT must not exceed SESSION_ABSOLUTE_TIMEOUT']);
  });
});

describe('loadConfig: APP_BASE_URL', () => {
  it('refuses http on a host other than localhost', () => {
    const problems = problemsOf({ ...MINIMAL, APP_BASE_URL: 'http://app.example.com' });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problemNaming(problems, 'APP_BASE_URL'), /must use https/);
  });

  it('refuses a path, a query, a fragment and user info', () => {
    for (const value of ['https://app.example.com/app', 'https://app.example.com/?x=1', 'https://app.example.com/#x', 'https://u:p@app.example.com']) {
      const problems = problemsOf({ ...MINIMAL, APP_BASE_URL: value });
      assert.match(problemNaming(problems, 'APP_BASE_URL'), /origin only/, value);
    }
  });

  it('refuses what is not an absolute http(s) URL', () => {
    for (const value of ['app.example.com', '', 'ftp://app.example.com', 'javascript:alert(1)']) {
      const problems = problemsOf({ ...MINIMAL, APP_BASE_URL: value });
      assert.match(problemNaming(problems, 'APP_BASE_URL'), /absolute http\(s\) origin/, value);
    }
  });
});

describe('loadConfig: OIDC_ISSUER', () => {
  it('allows an http issuer with OIDC_ALLOW_INSECURE_HTTP=true', () => {
    const config = load({ OIDC_ISSUER: 'http://localhost:3001', OIDC_ALLOW_INSECURE_HTTP: 'true' });
    assert.equal(config.oidc.issuer, 'http://localhost:3001');
    assert.equal(config.oidc.allowInsecureHttp, true);
  });

  it('refuses an http issuer with OIDC_ALLOW_INSECURE_HTTP=false', () => {
    const problems = problemsOf({ ...MINIMAL, OIDC_ISSUER: 'http://localhost:3001', OIDC_ALLOW_INSECURE_HTTP: 'false' });
    problemNaming(problems, 'OIDC_ISSUER uses http');
  });

  it('refuses a flag that is not exactly true or false', () => {
    const problems = problemsOf({ ...MINIMAL, OIDC_ALLOW_INSECURE_HTTP: 'yes' });
    assert.match(problemNaming(problems, 'OIDC_ALLOW_INSECURE_HTTP'), /"true" or "false"/);
  });

  it('keeps the issuer exactly as given (a trailing slash matters for the discovery check)', () => {
    assert.equal(load({ OIDC_ISSUER: 'https://id.example.com/realms/main/' }).oidc.issuer, 'https://id.example.com/realms/main/');
  });
});

describe('loadConfig: client authentication', () => {
  it('refuses private_key_jwt without a key', () => {
    const problems = problemsOf({ ...MINIMAL, OIDC_CLIENT_AUTH: 'private_key_jwt' });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problemNaming(problems, 'OIDC_CLIENT_PRIVATE_KEY'), /required with OIDC_CLIENT_AUTH=private_key_jwt/);
  });

  it('refuses a key that is not JSON, or not a private JWK', () => {
    for (const [key, why] of [['not json', /not valid JSON/], ['{"kty":"RSA","n":"x","e":"AQAB"}', /private JWK/], ['null', /private JWK/], ['"d"', /private JWK/]] as const) {
      const problems = problemsOf({ ...MINIMAL, OIDC_CLIENT_AUTH: 'private_key_jwt', OIDC_CLIENT_PRIVATE_KEY: key });
      assert.match(problemNaming(problems, 'OIDC_CLIENT_PRIVATE_KEY'), why, key);
    }
  });

  it('accepts private_key_jwt with a private JWK and no secret (kid: its thumbprint, alg from the curve)', () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const config = load({ OIDC_CLIENT_AUTH: 'private_key_jwt', OIDC_CLIENT_SECRET: undefined, OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(jwk) });
    assert.equal(config.oidc.clientAuth, 'private_key_jwt');
    assert.deepEqual(config.oidc.clientPrivateKey, { ...jwk, kid: jwkThumbprint(jwk as Record<string, unknown>), alg: 'ES256' });
  });

  it('refuses client_secret_post without a secret', () => {
    const problems = problemsOf({ ...MINIMAL, OIDC_CLIENT_AUTH: 'client_secret_post', OIDC_CLIENT_SECRET: '' });
    assert.match(problemNaming(problems, 'OIDC_CLIENT_SECRET'), /required with OIDC_CLIENT_AUTH=client_secret_post/);
  });

  it('refuses an unknown client authentication method', () => {
    const problems = problemsOf({ ...MINIMAL, OIDC_CLIENT_AUTH: 'tls_client_auth' });
    assert.match(problemNaming(problems, 'OIDC_CLIENT_AUTH'), /must be one of/);
  });
});

describe('loadConfig: unknown variables', () => {
  it('refuses OIDC_CLIENT_SECRETS (a typo), naming it', () => {
    const problems = problemsOf({ ...MINIMAL, OIDC_CLIENT_SECRETS: 'x' });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problemNaming(problems, 'OIDC_CLIENT_SECRETS is not a variable'), /a typo\?/);
  });

  it('refuses unknown SESSION_ and BFF_ variables, and ignores other prefixes', () => {
    const problems = problemsOf({ ...MINIMAL, SESSION_SECRET: SECRET_A, BFF_ROUTE: '[]', HOME: '/root', NODE_ENV: 'production' });
    assert.equal(problems.length, 2, problems.join('\n'));
    problemNaming(problems, 'SESSION_SECRET is not');
    problemNaming(problems, 'BFF_ROUTE is not');
  });
});

describe('loadConfig: the route table', () => {
  const table = [{ path: '/api/orders', upstream: 'https://orders.internal/v1', scopes: ['orders:read'], resource: 'https://orders.internal/' }];

  it('reads BFF_ROUTES as inline JSON and adds its scopes and resources', () => {
    const config = load({ BFF_ROUTES: JSON.stringify(table) });
    assert.deepEqual(config.routes.map((r) => r.path), ['/api/orders']);
    assert.deepEqual(config.oidc.scopes.split(' '), ['openid', 'profile', 'email', 'offline_access', 'orders:read']);
    assert.deepEqual(config.oidc.resources, ['https://orders.internal/']);
  });

  it('refuses BFF_ROUTES that is not JSON', () => {
    const problems = problemsOf({ ...MINIMAL, BFF_ROUTES: '[{path: "/api/x"}]' });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problemNaming(problems, 'BFF_ROUTES'), /^BFF_ROUTES is not valid JSON/);
  });

  it('refuses a table that does not validate, prefixed with the variable', () => {
    const problems = problemsOf({ ...MINIMAL, BFF_ROUTES: '[{"path": "/api/x"}]' });
    assert.ok(problems.length >= 1);
    for (const p of problems) assert.match(p, /^BFF_ROUTES /);
  });

  it('refuses BFF_ROUTES and BFF_ROUTES_FILE both set', () => {
    const problems = problemsOf({ ...MINIMAL, BFF_ROUTES: JSON.stringify(table), BFF_ROUTES_FILE: '/nonexistent/routes.json' });
    assert.deepEqual(problems, ['BFF_ROUTES and BFF_ROUTES_FILE are both set: choose one']);
  });

  describe('BFF_ROUTES_FILE', () => {
    function withTempFile(contents: string, fn: (path: string) => void): void {
      const dir = mkdtempSync(join(tmpdir(), 'cloakroom-routes-'));
      try {
        const path = join(dir, 'routes.json');
        writeFileSync(path, contents);
        fn(path);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    it('reads the table from the file', () => {
      withTempFile(JSON.stringify(table), (path) => {
        const config = load({ BFF_ROUTES_FILE: path });
        assert.deepEqual(config.routes.map((r) => [r.path, r.upstream.href]), [['/api/orders', 'https://orders.internal/v1']]);
        assert.ok(config.oidc.scopes.split(' ').includes('orders:read'));
      });
    });

    it('reads the file when BFF_ROUTES is set but empty', () => {
      withTempFile(JSON.stringify(table), (path) => {
        const config = load({ BFF_ROUTES: '', BFF_ROUTES_FILE: path });
        assert.deepEqual(config.routes.map((r) => r.path), ['/api/orders']);
      });
    });

    it('refuses a file that is not JSON, naming BFF_ROUTES_FILE', () => {
      withTempFile('not json', (path) => {
        const problems = problemsOf({ ...MINIMAL, BFF_ROUTES_FILE: path });
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.match(problemNaming(problems, 'BFF_ROUTES_FILE'), /^BFF_ROUTES_FILE is not valid JSON/);
      });
    });

    it('refuses a file that cannot be read', () => {
      const problems = problemsOf({ ...MINIMAL, BFF_ROUTES_FILE: '/nonexistent/cloakroom/routes.json' });
      assert.match(problemNaming(problems, 'BFF_ROUTES_FILE'), /^BFF_ROUTES_FILE could not be read/);
    });
  });
});

describe('loadConfig: session secrets and rotation', () => {
  it('two secrets: the first seals, both unseal', () => {
    const { session } = load({ SESSION_SECRETS: `${SECRET_A},${SECRET_B}` });
    assert.deepEqual(Object.values(session.sealPassword), [SECRET_A]);
    assert.equal(Object.keys(session.unsealPasswords).length, 2);
    assert.deepEqual(Object.values(session.unsealPasswords).sort(), [SECRET_A, SECRET_B]);
    const [sealId] = Object.keys(session.sealPassword);
    assert.equal(session.unsealPasswords[Number(sealId)], SECRET_A);
  });

  it('ids are stable regardless of order, positive integers, and distinct', () => {
    const ab = load({ SESSION_SECRETS: `${SECRET_A},${SECRET_B}` }).session;
    const ba = load({ SESSION_SECRETS: ` ${SECRET_B} , ${SECRET_A} ` }).session;
    assert.deepEqual(ab.unsealPasswords, ba.unsealPasswords);
    assert.deepEqual(Object.values(ba.sealPassword), [SECRET_B]);
    const idOf = (s: Config['session'], secret: string) => Object.entries(s.unsealPasswords).find(([, v]) => v === secret)?.[0];
    assert.equal(idOf(ab, SECRET_A), Object.keys(ab.sealPassword)[0]);
    assert.equal(idOf(ba, SECRET_B), Object.keys(ba.sealPassword)[0]);
    for (const id of Object.keys(ab.unsealPasswords)) assert.ok(Number.isSafeInteger(Number(id)) && Number(id) > 0, id);
    assert.notEqual(idOf(ab, SECRET_A), idOf(ab, SECRET_B));
  });

  it('the id of a secret is the same with or without the others', () => {
    const alone = load({ SESSION_SECRETS: SECRET_B }).session.sealPassword;
    const withOthers = load({ SESSION_SECRETS: `${SECRET_A},${SECRET_B}` }).session.unsealPasswords;
    const [id] = Object.keys(alone);
    assert.equal(withOthers[Number(id)], SECRET_B);
  });

  it('names each short entry by its position', () => {
    const problems = problemsOf({ ...MINIMAL, SESSION_SECRETS: `${SECRET_A},short,${'x'.repeat(31)}` });
    assert.deepEqual(problems, [
      'SESSION_SECRETS entry 2 is 5 characters; each must have 32+ (e.g. `openssl rand -base64 32`)',
      'SESSION_SECRETS entry 3 is 31 characters; each must have 32+ (e.g. `openssl rand -base64 32`)',
    ]);
  });

  it('refuses an empty list and a duplicate', () => {
    problemNaming(problemsOf({ ...MINIMAL, SESSION_SECRETS: ' , ' }), 'SESSION_SECRETS is empty');
    problemNaming(problemsOf({ ...MINIMAL, SESSION_SECRETS: `${SECRET_A},${SECRET_A}` }), 'SESSION_SECRETS lists the same secret twice');
  });
});

describe('loadConfig: OIDC_PROMPT', () => {
  it('defaults to consent when offline_access is requested', () => {
    assert.equal(load().oidc.prompt, 'consent');
  });

  it('is undefined when set empty', () => {
    assert.equal(load({ OIDC_PROMPT: '' }).oidc.prompt, undefined);
  });

  it('is undefined without offline_access', () => {
    assert.equal(load({ OIDC_SCOPES: 'openid profile email' }).oidc.prompt, undefined);
  });

  it('is what is given otherwise', () => {
    assert.equal(load({ OIDC_PROMPT: 'login' }).oidc.prompt, 'login');
    assert.equal(load({ OIDC_PROMPT: 'login', OIDC_SCOPES: 'openid' }).oidc.prompt, 'login');
  });
});

describe('getConfig', () => {
  it('keeps a refusal: every later call throws the same ConfigError without reading the environment again', () => {
    const saved = { ...process.env };
    try {
      for (const key of Object.keys(process.env)) if (/^(APP_|OIDC_|SESSION_|BFF_|REDIS_)/.test(key)) delete process.env[key];
      resetConfigForTests();
      const first = (() => {
        try {
          getConfig();
        } catch (error) {
          return error;
        }
      })();
      assert.ok(first instanceof ConfigError);
      Object.assign(process.env, MINIMAL);
      assert.throws(() => getConfig(), (error: unknown) => error === first);
      resetConfigForTests();
      assert.equal(getConfig().appOrigin, 'http://localhost:3000');
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
      resetConfigForTests();
    }
  });
});

describe('loadConfig: documented bounds', () => {
  it('REFRESH_GRACE_PERIOD may be at most 120 seconds', () => {
    assert.equal(load({ REFRESH_GRACE_PERIOD: '120' }).tokens.refreshGrace, 120);
    assert.match(problemNaming(problemsOf({ ...MINIMAL, REFRESH_GRACE_PERIOD: '600' }), 'REFRESH_GRACE_PERIOD'), /between 1 and 120 seconds/);
  });

  it('REFRESH_LOCK_LEASE may be 1 to 60 seconds', () => {
    assert.equal(load({ REFRESH_LOCK_LEASE: '2' }).tokens.lockLease, 2);
    assert.match(problemNaming(problemsOf({ ...MINIMAL, REFRESH_LOCK_LEASE: '61' }), 'REFRESH_LOCK_LEASE'), /at most 60 seconds/);
    assert.match(problemNaming(problemsOf({ ...MINIMAL, REFRESH_LOCK_LEASE: '0' }), 'REFRESH_LOCK_LEASE'), /between 1 and/);
  });

  it('LOG_LEVEL takes the four levels', () => {
    for (const level of ['debug', 'info', 'warn', 'error']) load({ LOG_LEVEL: level });
    assert.match(problemNaming(problemsOf({ ...MINIMAL, LOG_LEVEL: 'trace' }), 'LOG_LEVEL'), /one of debug, info, warn, error/);
  });

  it('a public origin needs a route table; loopback keeps the demo routes', () => {
    problemNaming(problemsOf({ ...MINIMAL, APP_BASE_URL: 'https://app.example.com' }), 'BFF_ROUTES (or BFF_ROUTES_FILE) is required');
    assert.equal(load().routes.length, 2);
  });
});
