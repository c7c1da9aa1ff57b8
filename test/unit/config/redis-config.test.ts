/**
 * REDIS_URL and REDIS_CLUSTER_NODES at start: every problem named with its fix, and the
 * URL never echoed (it carries the Redis password).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../lib/config/load.ts';

const MINIMAL = {
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'cloakroom',
  OIDC_CLIENT_SECRET: 'client-secret',
  SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
} as const;
const PASSWORD = 'S3cr3t-redis-passw0rd';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...MINIMAL, ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  return assert.fail(`accepted ${JSON.stringify(Object.keys(env))}`);
}

describe('Redis configuration', () => {
  it('accepts redis:// and rediss:// URLs with credentials and a database, and cluster seed nodes', () => {
    for (const url of [`redis://localhost:6379`, `rediss://default:${PASSWORD}@redis.example.com:6380`, `redis://:${PASSWORD}@10.0.0.5:6379/2`, 'redis://[::1]:6379']) {
      const config = loadConfig({ ...MINIMAL, REDIS_URL: url });
      assert.equal(config.redis.url, url);
      assert.deepEqual(config.redis.clusterNodes, []);
    }
    const cluster = loadConfig({ ...MINIMAL, REDIS_CLUSTER_NODES: 'redis-1:6379, redis-2:6379,10.0.0.7:7000,[::1]:7001' });
    assert.deepEqual(cluster.redis.clusterNodes, ['redis-1:6379', 'redis-2:6379', '10.0.0.7:7000', '[::1]:7001']);
    assert.equal(cluster.redis.url, undefined);
    assert.equal(cluster.redis.keyPrefix, 'cloakroom:');
  });

  it('refuses another scheme, a path or query, both variables at once, and bad seed nodes — never echoing the URL', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ REDIS_URL: `http://user:${PASSWORD}@redis.example.com:6379` }, /REDIS_URL must be a redis:\/\/ or rediss:\/\//],
      [{ REDIS_URL: `not a url ${PASSWORD}` }, /REDIS_URL must be a redis:\/\/ or rediss:\/\//],
      [{ REDIS_URL: `redis://:${PASSWORD}@redis.example.com:6379/cache?tls=1` }, /REDIS_URL may carry user, password, host, port and a database number/],
      [{ REDIS_URL: `redis://:${PASSWORD}@redis.example.com:6379`, REDIS_CLUSTER_NODES: 'a:1' }, /REDIS_URL and REDIS_CLUSTER_NODES are both set/],
      [{ REDIS_CLUSTER_NODES: `redis-1:6379,redis-2,${PASSWORD}@x:1,host:99999` }, /REDIS_CLUSTER_NODES entries 2, 3, 4 are not host:port/],
      [{ REDIS_CLUSTER_NODES: ' , ' }, /REDIS_CLUSTER_NODES is empty/],
    ];
    for (const [env, expected] of cases) {
      const problems = problemsOf(env);
      assert.ok(problems.some((p) => expected.test(p)), `${JSON.stringify(Object.keys(env))}: ${problems.join(' | ')}`);
      for (const p of problems) assert.ok(!p.includes(PASSWORD), `a problem echoes the Redis password: ${p}`);
    }
  });
});
