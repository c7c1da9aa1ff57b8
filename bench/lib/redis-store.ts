/**
 * The broker on Redis (REDIS_URL) beside the memory store, for cookie and server-side
 * session storage, with 1 and N sessions; what the revocation check costs Redis (reads the
 * server counted per 1,000 API calls: `INFO commandstats`, with the client-side cache); and
 * the refresh storm split across two broker instances sharing one Redis.
 *
 * Throughput runs reuse the main stack's provider, API, port and APP_BASE_URL (the
 * provider knows that redirect URI only), one broker at a time on that port.
 */
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startDemoApi } from '../../demo/api.ts';
import { startDevIdp } from '../../demo/idp.ts';
import { startRedis, type RedisServer } from '../../test/helpers/redis-server.ts';
import { CookiePool, runLoad, type LoadFigures } from './load.ts';
import { join } from 'node:path';
import { freePort, progress, ROOT, startChild, stopChild, waitForHttp } from './processes.ts';
import { BROWSER_API_HEADERS, inBatches, signInAtBroker } from './signin.ts';

export type Storage = 'cookie' | 'server';
export type StoreKind = 'memory' | 'redis';

export interface StoreRow {
  storage: Storage;
  store: StoreKind;
  sessions: number;
  connections: number;
  requestsPerSecond: number;
  p99Ms: number;
  failed: number;
  statusCodes: Record<string, number>;
}

export interface RevocationReads {
  storage: Storage;
  sessions: number;
  apiCalls: number;
  /** GET + MGET calls Redis executed during those calls (every key kind, not only revocation). */
  redisReads: number;
  readsPerThousandCalls: number;
  failed: number;
  statusCodes: Record<string, number>;
}

export interface RedisStoreFigures {
  rows: StoreRow[];
  revocationReads: RevocationReads[];
}

/** Reads (GET/MGET) Redis has executed since it started. */
function readsOn(redis: RedisServer): number {
  let total = 0;
  for (const line of redis.cli('INFO', 'commandstats')) {
    const match = /^cmdstat_(?:get|mget):calls=(\d+)/.exec(line.trim());
    if (match) total += Number(match[1]);
  }
  return total;
}

/** The helper kills its servers when this process exits, Ctrl-C included. */
const startRedisOnce = (): Promise<RedisServer> => startRedis();

export async function redisStoreThroughput(options: {
  brokerEnv: Record<string, string>;
  brokerPort: number;
  brokerOrigin: string;
  sessions: number;
  connections: number[];
  seconds: number;
  warmupSeconds: number;
  users: Array<{ username: string; password: string }>;
  signInParallel: number;
}): Promise<RedisStoreFigures> {
  const redis = await startRedisOnce();
  const rows: StoreRow[] = [];
  const revocationReads: RevocationReads[] = [];
  try {
    for (const storage of ['cookie', 'server'] as const) {
      for (const store of ['memory', 'redis'] as const) {
        const env: Record<string, string | undefined> = { ...options.brokerEnv, SESSION_STORAGE: storage, REDIS_URL: store === 'redis' ? redis.url : undefined };
        // A fresh key space per broker: no run reads another's sessions.
        if (store === 'redis') redis.cli('FLUSHALL');
        progress(`store: broker with ${store} store, ${storage} sessions: starting, signing in ${options.sessions + 1} sessions`);
        const broker = startChild(`broker (${store}, ${storage})`, [join(ROOT, 'scripts/start.ts')], { env: { ...env, PORT: String(options.brokerPort) } });
        try {
          await waitForHttp(`${options.brokerOrigin}/healthz`, broker);
          const cookies = await inBatches(options.sessions + 1, options.signInParallel, (i) =>
            signInAtBroker(options.brokerOrigin, options.users[i % options.users.length], '/api/bench/items'),
          );
          const pools = [
            { sessions: 1, pool: new CookiePool([cookies[options.sessions]]) },
            { sessions: options.sessions, pool: new CookiePool(cookies.slice(0, options.sessions)) },
          ];
          const spec = (pool: CookiePool, connections: number) => ({
            origin: options.brokerOrigin,
            path: '/api/bench/items',
            headers: { ...BROWSER_API_HEADERS },
            cookies: pool,
            connections,
            serverPid: broker.pid,
          });
          await runLoad({ ...spec(pools[1].pool, Math.max(...options.connections)), duration: options.warmupSeconds });
          for (const connections of options.connections) {
            for (const { sessions, pool } of pools) {
              const f: LoadFigures = await runLoad({ ...spec(pool, connections), duration: options.seconds });
              const failed = f.errors + f.timeouts + f.non2xx;
              rows.push({ storage, store, sessions, connections, requestsPerSecond: f.requestsPerSecond, p99Ms: f.latencyMs.p99, failed, statusCodes: f.statusCodes });
              progress(`  ${store}/${storage}, ${sessions} session(s), ${connections} conn: ${Math.round(f.requestsPerSecond)} req/s, p99 ${f.latencyMs.p99} ms${failed ? `, ${failed} FAILED` : ''}`);
            }
          }
          if (store === 'redis') {
            for (const { sessions, pool } of pools) {
              const before = readsOn(redis);
              const f = await runLoad({ ...spec(pool, 10), amount: 1_000 });
              const redisReads = readsOn(redis) - before;
              const failed = f.errors + f.timeouts + f.non2xx;
              revocationReads.push({ storage, sessions, apiCalls: f.requests, redisReads, readsPerThousandCalls: (redisReads / Math.max(1, f.requests)) * 1_000, failed, statusCodes: f.statusCodes });
              progress(`  redis/${storage}, ${sessions} session(s): ${redisReads} Redis reads for ${f.requests} API calls`);
            }
          }
        } finally {
          await stopChild(broker);
        }
      }
    }
    return { rows, revocationReads };
  } finally {
    await redis.close();
  }
}

/** Throughput of the Redis store over the memory store, per storage, sessions and connections. */
export function redisRatios(rows: StoreRow[]): Array<{ storage: Storage; sessions: number; connections: number; ratio: number }> {
  const out: Array<{ storage: Storage; sessions: number; connections: number; ratio: number }> = [];
  for (const r of rows.filter((row) => row.store === 'redis')) {
    const m = rows.find((row) => row.store === 'memory' && row.storage === r.storage && row.sessions === r.sessions && row.connections === r.connections);
    if (m) out.push({ storage: r.storage, sessions: r.sessions, connections: r.connections, ratio: r.requestsPerSecond / m.requestsPerSecond });
  }
  return out;
}

export interface TwoInstanceStormFigures {
  parallel: number;
  accessTokenTtlSeconds: number;
  refreshGrants: number;
  succeeded: number;
  statusCodes: Record<string, number>;
  grantsRevoked: number;
  followUpOk: boolean;
}

/** One GET with an explicit Host (the second instance sits behind the same APP_BASE_URL, as behind a load balancer). */
function get(port: number, host: string, path: string, cookie: string): Promise<{ status: number; setCookie: string[] }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: { ...BROWSER_API_HEADERS, host, cookie }, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('error', () => resolve({ status: 0, setCookie: [] }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * The refresh storm across TWO brokers sharing one Redis: one session, its access token
 * expired, `parallel` requests at once alternating between the instances. Target: exactly
 * one refresh grant at the provider (the Redis lock), every request answered 200.
 */
export async function twoInstanceStorm(options: { parallel: number; accessTokenTtl: number }): Promise<TwoInstanceStormFigures> {
  const audience = 'https://storm-api.bench.example/';
  const [portA, portB] = [await freePort(), await freePort()];
  const host = `localhost:${portA}`;
  const origin = `http://${host}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const redis = await startRedisOnce();
  const idp = await startDevIdp({
    port: 0,
    accessTokenTtl: options.accessTokenTtl,
    rotateRefreshTokens: true,
    showDemoHint: false,
    resources: { [audience]: { scope: 'demo:read' } },
    clients: [{ client_id: 'cloakroom-storm2', client_secret: clientSecret, redirect_uris: [`${origin}/auth/callback`] }],
  });
  const api = await startDemoApi({ port: 0, issuer: idp.issuer, audience, name: 'storm-api' });
  const env = {
    APP_BASE_URL: origin,
    OIDC_ISSUER: idp.issuer,
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: 'cloakroom-storm2',
    OIDC_CLIENT_SECRET: clientSecret,
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    REDIS_URL: redis.url,
    BFF_ROUTES: JSON.stringify([{ path: '/api/storm', upstream: api.url, auth: 'required', resource: audience, scopes: ['demo:read'] }]),
  };
  const brokers = [portA, portB].map((port, i) => startChild(`storm broker ${i + 1}`, [join(ROOT, 'scripts/start.ts')], { env: { ...env, PORT: String(port) } }));
  try {
    await waitForHttp(`${origin}/healthz`, brokers[0]);
    await waitForHttp(`http://127.0.0.1:${portB}/healthz`, brokers[1]);
    const cookie = await signInAtBroker(origin, { username: 'alice', password: 'alice-password' }, '/api/storm/items');
    const waitMs = options.accessTokenTtl * 1000 + 500;
    progress(`two-instance storm: signed in; waiting ${(waitMs / 1000).toFixed(1)} s for the access token to expire`);
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    const grantsBefore = idp.stats.refreshGrants;
    const revokedBefore = idp.stats.grantsRevoked;
    const answers = await Promise.all(Array.from({ length: options.parallel }, (_, i) => get(i % 2 === 0 ? portA : portB, host, '/api/storm/items', cookie)));
    const statusCodes: Record<string, number> = {};
    for (const { status } of answers) statusCodes[status] = (statusCodes[status] ?? 0) + 1;
    const last = answers.flatMap((a) => a.setCookie).filter((c) => c.startsWith('cloakroom=')).at(-1);
    const followUp = await get(portB, host, '/api/storm/items', last ? last.split(';')[0] : cookie);
    return {
      parallel: options.parallel,
      accessTokenTtlSeconds: options.accessTokenTtl,
      refreshGrants: idp.stats.refreshGrants - grantsBefore,
      succeeded: answers.filter((a) => a.status === 200).length,
      statusCodes,
      grantsRevoked: idp.stats.grantsRevoked - revokedBefore,
      followUpOk: followUp.status === 200,
    };
  } catch (error) {
    throw new Error(`two-instance storm failed: ${error instanceof Error ? error.message : String(error)}\n${brokers.map((b) => b.output().slice(-1_500)).join('\n')}`, { cause: error });
  } finally {
    await Promise.all(brokers.map((b) => stopChild(b)));
    await api.close();
    await idp.close();
    await redis.close();
  }
}
