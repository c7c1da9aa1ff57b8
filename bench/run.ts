/**
 * `npm run bench`: the broker's cost against two hand-written floors, in one run on one
 * machine, with the same load (autocannon) for every contestant.
 *
 *   floor 1   the demo API called directly with a valid token (got at the provider)
 *   floor 2   a bare Next.js route that forwards to the same API with fetch (bench/floor-app)
 *   floor 3   a bare node:http server forwarding with undici's pool (bench/floor3.ts)
 *   broker    GET /api/... through the real proxy (`npm start`: the front door, server/),
 *             with one shared session, then with many distinct sessions
 *
 * Then: a refresh storm against a rotating provider, the broker's memory after 50k and
 * 100k requests, and what the session-cookie decrypt costs and how often it is spared.
 * Targets are reported as MET / MISSED, never asserted.
 *
 *   npm run bench                      the full run (minutes); writes bench/results/
 *   npm run bench -- --no-build        reuse existing .next builds
 *   npm run bench -- --throughput-only the throughput phases only (no storm, memory, unseal)
 *   npm run bench -- --smoke           a few-second version that proves it all works;
 *                                      exits non-zero when something errors (not on a
 *                                      missed target) and writes nothing into bench/results
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startDevIdp, type DevIdp } from '../demo/idp.ts';
import { CookiePool, runLoad, type LoadFigures, type LoadSpec } from './lib/load.ts';
import {
  elapsedSeconds,
  freePort,
  installSignalHandlers,
  NEXT_BIN,
  progress,
  residentBytes,
  ROOT,
  runToCompletion,
  shutdown,
  startChild,
  stopChild,
  waitForHttp,
  type Child,
} from './lib/processes.ts';
import { barChart, formatTargets, summarise, table, throughputTargets, type ContestantId, type Summary, type Target } from './lib/report.ts';
import { BROWSER_API_HEADERS, inBatches, signInAtBroker, tokenAtProvider } from './lib/signin.ts';
import { hotSpots } from './lib/profile.ts';
import { rotationMemory, type RotationMemoryFigures } from './lib/rotation-memory.ts';
import { refreshStorm, type StormFigures } from './lib/storm.ts';
import { redisPhases, redisReport } from './lib/redis-report.ts';
import { websocketEcho, type EchoFigures } from './lib/websocket-echo.ts';
import { measureUnsealCache, measureUnsealCost, type CacheFigures, type UnsealCost } from './lib/unseal.ts';
import { measureOpsCost, type OpsCost } from './lib/ops-cost.ts';
import { dpopReport, measureDPoPCost, type DPoPCost } from './lib/dpop-cost.ts';

const args = new Set(process.argv.slice(2));
for (const arg of args) {
  if (!['--smoke', '--no-build', '--cpu-prof', '--throughput-only'].includes(arg)) {
    process.stderr.write(`unknown option ${arg}; use --smoke, --no-build, --cpu-prof, --throughput-only\n`);
    process.exit(2);
  }
}
const SMOKE = args.has('--smoke');
const NO_BUILD = args.has('--no-build');
/** Only the throughput phases: the figures the front door is about, in a few minutes. */
const THROUGHPUT_ONLY = args.has('--throughput-only');
/** Profiles the broker of the throughput runs (node --cpu-prof) and prints its hot spots. */
const CPU_PROF_DIR = args.has('--cpu-prof') ? mkdtempSync(join(os.tmpdir(), 'cloakroom-bench-prof-')) : undefined;

const PLAN = SMOKE
  ? { rounds: 1, seconds: 1.5, warmupSeconds: 0.5, connections: [10], sessions: 20, stormParallel: 10, stormTtl: 2, memoryStep: 2_000, unsealCalls: 2_000, cacheRequests: 400, rotationSessions: 10, rotationPhaseSeconds: 5, echoMessages: 200 }
  : { rounds: 3, seconds: 10, warmupSeconds: 5, connections: [10, 64], sessions: 1_000, stormParallel: 50, stormTtl: 4, memoryStep: 50_000, unsealCalls: 2_000, cacheRequests: 10_000, rotationSessions: 200, rotationPhaseSeconds: 20, echoMessages: 4_000 };
const SIGN_IN_PARALLEL = 10;
const MEMORY_CONNECTIONS = 10;
/** Long-lived access tokens for the throughput runs, so that no refresh interferes. */
const ACCESS_TOKEN_TTL = 3600;
const AUDIENCE = 'https://bench-api.example/';
const SCOPE = 'demo:read';
const USERS = [
  { username: 'alice', password: 'alice-password' },
  { username: 'bob', password: 'bob-password' },
];

installSignalHandlers();
const LOAD_AT_START = os.loadavg()[0];

interface Stack {
  idp: DevIdp;
  api: Child;
  apiOrigin: string;
  floorToken: string;
  floorApp: Child;
  floorOrigin: string;
  floor3: Child;
  floor3Origin: string;
  brokerPort: number;
  brokerOrigin: string;
  brokerEnv: Record<string, string>;
  broker: Child;
}

async function build(): Promise<void> {
  const mainBuilt = existsSync(join(ROOT, '.next/BUILD_ID'));
  const floorBuilt = existsSync(join(ROOT, 'bench/floor-app/.next/BUILD_ID'));
  // The smoke reuses the broker's existing build (CI has just built and tested it).
  if ((SMOKE || NO_BUILD) && mainBuilt) {
    progress('reusing the broker build in .next');
  } else {
    progress('building the broker for production (next build)');
    await runToCompletion('next build', [NEXT_BIN, 'build']);
  }
  if (NO_BUILD && floorBuilt) {
    progress('reusing the floor app build in bench/floor-app/.next');
  } else {
    progress('building the floor app (next build bench/floor-app)');
    await runToCompletion('next build bench/floor-app', [NEXT_BIN, 'build', 'bench/floor-app']);
  }
}

/** Waits for the first JSON line `{"port": N}` a child prints. */
async function reportedPort(child: Child, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = /\{"port":(\d+)\}/.exec(child.output());
    if (match) return Number(match[1]);
    if (child.process.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${child.name} did not report its port:\n${child.output()}`);
}

async function expectOk(url: string, headers: Record<string, string>, what: string): Promise<void> {
  const response = await fetch(url, { headers });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`${what} answered ${response.status}: ${body.slice(0, 300)}`);
}

/** The broker as production runs it: `npm start` (scripts/start.ts, the front door), one process. */
function startBroker(stack: Pick<Stack, 'brokerPort' | 'brokerEnv'>, profileDir?: string): Child {
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  return startChild('broker', [...profile, join(ROOT, 'scripts/start.ts')], { env: { ...stack.brokerEnv, PORT: String(stack.brokerPort) } });
}

async function startStack(): Promise<Stack> {
  const brokerPort = await freePort();
  const brokerOrigin = `http://127.0.0.1:${brokerPort}`;
  const brokerSecret = randomBytes(24).toString('base64url');
  const floorSecret = randomBytes(24).toString('base64url');
  const floorRedirect = 'http://localhost:9/floor/callback';

  progress('starting the development identity provider (access tokens live 3600 s)');
  const idp = await startDevIdp({
    port: 0,
    accessTokenTtl: ACCESS_TOKEN_TTL,
    rotateRefreshTokens: true,
    showDemoHint: false,
    resources: { [AUDIENCE]: { scope: SCOPE } },
    clients: [
      { client_id: 'cloakroom-bench', client_secret: brokerSecret, redirect_uris: [`${brokerOrigin}/auth/callback`] },
      { client_id: 'bench-floor', client_secret: floorSecret, redirect_uris: [floorRedirect] },
    ],
  });

  progress('starting the demo API (its own process)');
  const api = startChild('demo API', [join(ROOT, 'bench/lib/api-process.ts')], { env: { BENCH_ISSUER: idp.issuer, BENCH_AUDIENCE: AUDIENCE } });
  const apiOrigin = `http://127.0.0.1:${await reportedPort(api)}`;

  progress('getting an access token for the API at the provider (floors 1 and 2)');
  const { accessToken: floorToken } = await tokenAtProvider({
    issuer: idp.issuer,
    clientId: 'bench-floor',
    clientSecret: floorSecret,
    redirectUri: floorRedirect,
    audience: AUDIENCE,
    scope: SCOPE,
    creds: USERS[0],
  });
  await expectOk(`${apiOrigin}/items`, { authorization: `Bearer ${floorToken}` }, 'the API with the floor token');

  progress('starting the floor app (next start bench/floor-app)');
  const floorPort = await freePort();
  const floorApp = startChild('floor app', [NEXT_BIN, 'start', 'bench/floor-app', '--port', String(floorPort), '--hostname', '127.0.0.1'], {
    env: { FLOOR_UPSTREAM: apiOrigin, FLOOR_TOKEN: floorToken },
  });
  const floorOrigin = `http://127.0.0.1:${floorPort}`;
  await waitForHttp(`${floorOrigin}/forward/items`, floorApp);
  await expectOk(`${floorOrigin}/forward/items`, {}, 'the floor app');

  progress('starting floor 3 (bare node:http + undici pool, bench/floor3.ts)');
  const floor3 = startChild('floor 3', [join(ROOT, 'bench/floor3.ts')], { env: { FLOOR_UPSTREAM: apiOrigin, FLOOR_TOKEN: floorToken } });
  const floor3Origin = `http://127.0.0.1:${await reportedPort(floor3)}`;
  await expectOk(`${floor3Origin}/forward/items`, {}, 'floor 3');

  const brokerEnv: Record<string, string> = {
    APP_BASE_URL: brokerOrigin,
    OIDC_ISSUER: idp.issuer,
    OIDC_ALLOW_INSECURE_HTTP: 'true',
    OIDC_CLIENT_ID: 'cloakroom-bench',
    OIDC_CLIENT_SECRET: brokerSecret,
    SESSION_SECRETS: randomBytes(32).toString('base64url'),
    // `websocket: true` for the echo round trip (bench/lib/websocket-echo.ts); HTTP calls are unaffected.
    BFF_ROUTES: JSON.stringify([{ path: '/api/bench', upstream: apiOrigin, auth: 'required', resource: AUDIENCE, scopes: [SCOPE], websocket: true }]),
    // The load is one client address signing in 1,000 sessions, then one session at
    // thousands of calls a second: the API limit stays on (its check is in the figures)
    // but out of reach, and the sign-in setup is not what is measured.
    RATE_LIMIT_AUTH: '0',
    RATE_LIMIT_API: '1000000000',
  };
  progress('starting the broker (npm start: the front door over the production build)');
  const broker = startBroker({ brokerPort, brokerEnv }, CPU_PROF_DIR);
  await waitForHttp(`${brokerOrigin}/healthz`, broker);

  return { idp, api, apiOrigin, floorToken, floorApp, floorOrigin, floor3, floor3Origin, brokerPort, brokerOrigin, brokerEnv, broker };
}

async function signInSessions(stack: Stack, count: number): Promise<string[]> {
  progress(`signing in ${count} sessions through the broker (${SIGN_IN_PARALLEL} at a time, no browser)`);
  const started = Date.now();
  const step = Math.max(1, Math.round(count / 10));
  const cookies = await inBatches(
    count,
    SIGN_IN_PARALLEL,
    (i) => signInAtBroker(stack.brokerOrigin, USERS[i % USERS.length], '/api/bench/items'),
    (done) => {
      if (done % step === 0 || done === count) progress(`  ${done}/${count} signed in`);
    },
  );
  progress(`  ${count} sign-ins in ${((Date.now() - started) / 1000).toFixed(1)} s (${((Date.now() - started) / count).toFixed(0)} ms each, ${SIGN_IN_PARALLEL} in parallel)`);
  return cookies;
}

type Contestant = { id: ContestantId; label: string; spec: (connections: number) => Omit<LoadSpec, 'duration' | 'amount'> };

function contestants(stack: Stack, shared: CookiePool, distinct: CookiePool): Contestant[] {
  const brokerOrigin = `http://127.0.0.1:${stack.brokerPort}`;
  // Every contestant gets the same headers the app's JavaScript would send; only the
  // credentials differ (a bearer token for the floors, the session cookie for the broker).
  return [
    {
      id: 'floor1',
      label: 'floor 1: API direct',
      spec: (connections) => ({ origin: stack.apiOrigin, path: '/items', headers: { ...BROWSER_API_HEADERS, authorization: `Bearer ${stack.floorToken}` }, connections, serverPid: stack.api.pid }),
    },
    {
      id: 'floor2',
      label: 'floor 2: bare Next fetch',
      spec: (connections) => ({ origin: stack.floorOrigin, path: '/forward/items', headers: { ...BROWSER_API_HEADERS }, connections, serverPid: stack.floorApp.pid }),
    },
    {
      id: 'floor3',
      label: 'floor 3: bare node:http + undici',
      spec: (connections) => ({ origin: stack.floor3Origin, path: '/forward/items', headers: { ...BROWSER_API_HEADERS }, connections, serverPid: stack.floor3.pid }),
    },
    {
      id: 'broker1',
      label: 'broker, 1 session',
      spec: (connections) => ({ origin: brokerOrigin, path: '/api/bench/items', headers: { ...BROWSER_API_HEADERS }, cookies: shared, connections, serverPid: stack.broker.pid }),
    },
    {
      id: 'brokerN',
      label: `broker, ${distinct.size.toLocaleString('en-US')} sessions`,
      spec: (connections) => ({ origin: brokerOrigin, path: '/api/bench/items', headers: { ...BROWSER_API_HEADERS }, cookies: distinct, connections, serverPid: stack.broker.pid }),
    },
  ];
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describe(f: LoadFigures): string {
  const bad = f.errors + f.timeouts + f.non2xx;
  return `${Math.round(f.requestsPerSecond)} req/s, p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms, RSS ${(f.peakRssBytes / 1048576).toFixed(0)} MB${bad ? `, ${bad} FAILED (${JSON.stringify(f.statusCodes)}, ${f.errors} errors, ${f.timeouts} timeouts)` : ''}`;
}

async function throughput(all: Contestant[]): Promise<Map<number, Summary[]>> {
  const maxConnections = Math.max(...PLAN.connections);
  for (const c of all) {
    progress(`warm-up: ${c.label}, ${maxConnections} connections, ${PLAN.warmupSeconds} s`);
    await runLoad({ ...c.spec(maxConnections), duration: PLAN.warmupSeconds });
  }
  const byConnections = new Map<number, Summary[]>();
  for (const connections of PLAN.connections) {
    const rounds = new Map<ContestantId, LoadFigures[]>(all.map((c) => [c.id, []]));
    for (let round = 1; round <= PLAN.rounds; round++) {
      // Interleaved (A B C D, A B C D, …): a drift of the machine touches every contestant alike.
      for (const c of all) {
        await pause(300);
        const figures = await runLoad({ ...c.spec(connections), duration: PLAN.seconds });
        rounds.get(c.id)?.push(figures);
        progress(`${connections} conn · round ${round}/${PLAN.rounds} · ${c.label}: ${describe(figures)}`);
      }
    }
    byConnections.set(connections, all.map((c) => summarise(c.id, c.label, connections, rounds.get(c.id) ?? [])));
  }
  return byConnections;
}

interface MemoryFigures {
  connections: number;
  sessions: number;
  atStartBytes: number;
  steps: Array<{ afterRequests: number; rssBytes: number; peakRssBytes: number; failed: number }>;
  growthPercent: number;
}

/** A fresh broker process, so that "after N requests" counts from its start. */
async function memory(stack: Stack, distinct: CookiePool): Promise<MemoryFigures> {
  progress('memory: restarting the broker so that the counts start from zero');
  await stopChild(stack.broker);
  stack.broker = startBroker(stack);
  await waitForHttp(`${stack.brokerOrigin}/healthz`, stack.broker);
  await pause(500);
  const atStartBytes = residentBytes(stack.broker.pid) ?? 0;
  const steps: MemoryFigures['steps'] = [];
  for (let step = 1; step <= 2; step++) {
    const figures = await runLoad({
      origin: `http://127.0.0.1:${stack.brokerPort}`,
      path: '/api/bench/items',
      headers: { ...BROWSER_API_HEADERS },
      cookies: distinct,
      connections: MEMORY_CONNECTIONS,
      amount: PLAN.memoryStep,
      serverPid: stack.broker.pid,
    });
    // Let the request burst settle before reading the resident set.
    await pause(1_000);
    const rssBytes = residentBytes(stack.broker.pid) ?? 0;
    steps.push({ afterRequests: step * PLAN.memoryStep, rssBytes, peakRssBytes: figures.peakRssBytes, failed: figures.errors + figures.timeouts + figures.non2xx });
    progress(`memory: after ${(step * PLAN.memoryStep).toLocaleString('en-US')} requests RSS ${(rssBytes / 1048576).toFixed(1)} MB (${describe(figures)})`);
  }
  const [first, second] = steps;
  return {
    connections: MEMORY_CONNECTIONS,
    sessions: distinct.size,
    atStartBytes,
    steps,
    growthPercent: ((second.rssBytes - first.rssBytes) / first.rssBytes) * 100,
  };
}

interface RateLimitCost {
  sessions: number;
  connections: number;
  /** req/s per round with RATE_LIMIT_API at its default (600 per minute per session). */
  atDefault: number[];
  /** The same with RATE_LIMIT_API=0 (the limiter not consulted). */
  off: number[];
  costPercent: number;
  failed: number;
}

/**
 * The API rate limit's cost: the distinct-sessions load against a fresh broker with
 * RATE_LIMIT_API at its default, then with it off, alternating per round. Each session
 * stays far below 600 calls a minute here, so both answer 200 throughout and the
 * difference is the limiter's check. (The throughput runs above keep the limit on but out
 * of reach — one shared session at thousands of calls a second would be refused — so its
 * check is in their figures too; RATE_LIMIT_AUTH is off there only for the sign-in setup.)
 */
async function rateLimitCost(stack: Stack, distinct: CookiePool): Promise<RateLimitCost> {
  const connections = MEMORY_CONNECTIONS;
  const figures: RateLimitCost = { sessions: distinct.size, connections, atDefault: [], off: [], costPercent: Number.NaN, failed: 0 };
  const defaultEnv = { ...stack.brokerEnv };
  delete defaultEnv.RATE_LIMIT_API;
  for (let round = 1; round <= PLAN.rounds; round++) {
    for (const [name, env, into] of [['default', defaultEnv, figures.atDefault], ['off', { ...stack.brokerEnv, RATE_LIMIT_API: '0' }, figures.off]] as const) {
      await stopChild(stack.broker);
      stack.broker = startBroker({ brokerPort: stack.brokerPort, brokerEnv: env });
      await waitForHttp(`${stack.brokerOrigin}/healthz`, stack.broker);
      const spec = { origin: `http://127.0.0.1:${stack.brokerPort}`, path: '/api/bench/items', headers: { ...BROWSER_API_HEADERS }, cookies: distinct, connections, serverPid: stack.broker.pid };
      await runLoad({ ...spec, duration: PLAN.warmupSeconds });
      const run = await runLoad({ ...spec, duration: PLAN.seconds });
      figures.failed += run.errors + run.timeouts + run.non2xx;
      into.push(run.requestsPerSecond);
      progress(`rate limit cost · round ${round}/${PLAN.rounds} · RATE_LIMIT_API ${name}: ${describe(run)}`);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  figures.costPercent = (1 - median(figures.atDefault) / median(figures.off)) * 100;
  return figures;
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    /** 1-minute load average: anything else busy on the machine skews every figure. */
    loadAverageAtStart: LOAD_AT_START,
    loadAverageAtEnd: os.loadavg()[0],
  };
}

function sessionSeal(cookieHeader: string): string {
  const part = cookieHeader.split('; ').find((p) => p.startsWith('cloakroom='));
  if (!part) throw new Error('no cloakroom session cookie in the sign-in result');
  return part.slice('cloakroom='.length);
}

/** `--throughput-only`: the table and its targets, a JSON file in the temp directory (never results/). */
function reportThroughputOnly(byConnections: Map<number, Summary[]>, profile: ReturnType<typeof hotSpots> | undefined): number {
  const failures: string[] = [];
  for (const summaries of byConnections.values()) {
    for (const s of summaries) if (s.errors + s.timeouts + s.non2xx > 0) failures.push(`${s.label}, ${s.connections} connections: ${s.errors} errors, ${s.timeouts} timeouts, ${s.non2xx} non-2xx`);
  }
  const targets = throughputTargets(byConnections);
  const outDir = join(os.tmpdir(), 'cloakroom-bench-throughput');
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(jsonPath, `${JSON.stringify({ smoke: SMOKE, plan: PLAN, machine: machine(), throughput: Object.fromEntries(byConnections), targets, failures, ...(profile ? { cpuProfile: profile } : {}) }, null, 2)}\n`);
  if (profile) {
    process.stdout.write(`\nCPU profile of the broker (${profile.seconds.toFixed(0)} s, ${profile.file}); self time, % of all samples:\n  by area: ${profile.byArea.map((a) => `${a.name} ${a.selfPercent.toFixed(1)} %`).join(' · ')}\n`);
    for (const spot of profile.spots) process.stdout.write(`  ${spot.selfPercent.toFixed(1).padStart(5)} %  ${spot.name}  ${spot.where}\n`);
  }
  process.stdout.write(`\n${table(byConnections)}\nTargets (reported, not asserted):\n${formatTargets(targets)}\n\nWrote ${jsonPath}.\n${failures.length ? `\nFAILED:\n  ${failures.join('\n  ')}\n` : ''}`);
  return failures.length > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  progress(SMOKE ? 'smoke run: a few seconds per phase, figures are not meaningful' : `full run: ${PLAN.rounds} rounds × ${PLAN.connections.join(' and ')} connections × ${PLAN.seconds} s per contestant`);
  if (LOAD_AT_START > os.cpus().length / 2) {
    progress(`warning: the machine is already busy (load average ${LOAD_AT_START.toFixed(2)} on ${os.cpus().length} cores); figures will be noisy`);
  }
  await build();
  const stack = await startStack();

  const cookies = await signInSessions(stack, PLAN.sessions + 1);
  const shared = new CookiePool([cookies[PLAN.sessions]]);
  const distinct = new CookiePool(cookies.slice(0, PLAN.sessions));
  const all = contestants(stack, shared, distinct);
  // One request each before any load: a contestant that cannot answer fails here, clearly.
  await expectOk(`http://127.0.0.1:${stack.brokerPort}/api/bench/items`, { ...BROWSER_API_HEADERS, cookie: shared.header(0) }, 'the broker');

  const byConnections = await throughput(all);
  if (THROUGHPUT_ONLY) {
    // The profile is written when the broker exits.
    await stopChild(stack.broker);
    return reportThroughputOnly(byConnections, CPU_PROF_DIR ? hotSpots(CPU_PROF_DIR) : undefined);
  }
  progress(`WebSocket echo: ${PLAN.echoMessages} round trips of 64 bytes, the API's echo directly and through the broker`);
  const echo: EchoFigures = await websocketEcho({
    directUrl: `${stack.apiOrigin.replace(/^http/, 'ws')}/echo`,
    token: stack.floorToken,
    brokerUrl: `${stack.brokerOrigin.replace(/^http/, 'ws')}/api/bench/echo`,
    brokerOrigin: stack.brokerOrigin,
    cookie: shared.header(0),
    messages: PLAN.echoMessages,
  });
  progress(`  median ${echo.direct.medianUs.toFixed(0)} µs directly, ${echo.broker.medianUs.toFixed(0)} µs through the broker (+${echo.addedMedianUs.toFixed(0)} µs, ${echo.medianRatio.toFixed(2)} ×); p99 ${echo.direct.p99Us.toFixed(0)} / ${echo.broker.p99Us.toFixed(0)} µs`);
  const memoryFigures = await memory(stack, distinct);
  progress(`rate limit cost: ${distinct.size} sessions, RATE_LIMIT_API at its default against off, ${PLAN.rounds} round(s)`);
  const limits = await rateLimitCost(stack, distinct);
  progress(`  the default limit costs ${limits.costPercent.toFixed(1)} % of req/s (median of ${limits.atDefault.length} round(s); negative: within the noise)`);
  const profile = CPU_PROF_DIR ? hotSpots(CPU_PROF_DIR) : undefined;
  await stopChild(stack.broker);

  progress(`unseal cost: iron-session unsealData of a real session seal, ${PLAN.unsealCalls} calls in-process`);
  const unsealCost: UnsealCost = await measureUnsealCost(stack.brokerEnv, sessionSeal(cookies[0]), PLAN.unsealCalls);
  progress(`  ${unsealCost.microsecondsPerUnseal.toFixed(0)} µs per unseal (the cache key: ${unsealCost.microsecondsPerCacheKey.toFixed(1)} µs)`);
  const cache: CacheFigures[] = [];
  for (const [pattern, pool, requests] of [
    [`${distinct.size} distinct sessions`, cookies.slice(0, PLAN.sessions), PLAN.cacheRequests],
    ['1 shared session', [cookies[PLAN.sessions]], Math.min(PLAN.cacheRequests, 2_000)],
  ] as const) {
    progress(`unseal cache: the broker's proxy handler in-process, ${pattern}, ${requests} requests`);
    const figures = await measureUnsealCache({
      env: stack.brokerEnv,
      apiUrl: `${stack.brokerOrigin}/api/bench/items`,
      cookies: pool,
      pattern,
      requests,
      concurrency: 10,
      timeLimitMs: 60_000,
    });
    cache.push(figures);
    progress(`  ${figures.unseals} unseals, ${figures.cacheHits} cache hits (${(figures.hitRatio * 100).toFixed(1)} %)${figures.non200 ? `, ${figures.non200} FAILED` : ''}`);
  }

  progress('operating costs in-process: metrics per proxied call, one scrape, the anomaly check when nothing changed');
  const opsCost: OpsCost = await measureOpsCost(SMOKE ? 20_000 : 200_000);
  progress(`  metrics ${(opsCost.metricsNsPerProxyCall / 1000).toFixed(2)} µs per call, scrape ${opsCost.scrapeMs.toFixed(1)} ms (${opsCost.scrapeBytes} bytes), anomaly check ${(opsCost.anomalyCheckNsUnchanged / 1000).toFixed(2)} µs`);

  progress(`refresh storm: ${PLAN.stormParallel} parallel requests on one session with an expired access token (rotating provider, ${PLAN.stormTtl} s tokens)`);
  const storm: StormFigures = await refreshStorm({ parallel: PLAN.stormParallel, accessTokenTtl: PLAN.stormTtl });
  progress(`  ${storm.refreshGrants} refresh grant(s) at the provider, ${storm.succeeded}/${storm.parallel} succeeded, follow-up ${storm.followUpOk ? 'ok' : 'FAILED'}`);

  progress(`rotation memory: ${PLAN.rotationSessions} sessions refreshing about every 2 s, two phases of ${PLAN.rotationPhaseSeconds} s (in-process)`);
  const rotation: RotationMemoryFigures = await rotationMemory({ sessions: PLAN.rotationSessions, phaseSeconds: PLAN.rotationPhaseSeconds });

  // Redis: the store beside memory, the revocation cache's reads, the two-instance storm.
  const redis = await redisPhases({ stack, plan: PLAN, users: USERS, signInParallel: SIGN_IN_PARALLEL });

  // DPoP (issue 12): the proof per request beside the plain Bearer route, on a stack of its own.
  progress('dpop route: an ES256 proof in-process, then a Bearer and a DPoP route through npm start');
  const dpop: DPoPCost = await measureDPoPCost({ proofCalls: PLAN.unsealCalls, connections: 10, seconds: PLAN.seconds, rounds: PLAN.rounds });
  progress(`  ${dpopReport(dpop)}`);

  await shutdown();
  await stack.idp.close().catch(() => undefined);

  /* ---------------------------------------------------------------------------------- */
  const targets: Target[] = [
    ...throughputTargets(byConnections),
    ...redis.targets,
    {
      name: `refresh storm: exactly one grant and ${storm.parallel} successes`,
      met: storm.refreshGrants === 1 && storm.succeeded === storm.parallel,
      figure: `${storm.refreshGrants} grant(s), ${storm.succeeded}/${storm.parallel} succeeded`,
    },
    {
      name: `memory growth < 10 % from ${PLAN.memoryStep.toLocaleString('en-US')} to ${(2 * PLAN.memoryStep).toLocaleString('en-US')} requests`,
      met: memoryFigures.growthPercent < 10,
      figure: `${memoryFigures.growthPercent.toFixed(1)} % (${(memoryFigures.steps[0].rssBytes / 1048576).toFixed(1)} → ${(memoryFigures.steps[1].rssBytes / 1048576).toFixed(1)} MB)`,
    },
    {
      name: 'store entries do not grow with refreshes (one record per live session)',
      met: rotation.entriesPerRefresh < 0.01 && rotation.phases[1].storeEntries <= 3 * rotation.sessions,
      figure: `${rotation.phases.map((p) => `${p.storeEntries} entries after ${p.refreshGrants} refreshes`).join(', then ')} for ${rotation.sessions} sessions: ${rotation.entriesPerRefresh.toFixed(2)} entries per refresh`,
    },
  ];

  const failures: string[] = [];
  for (const summaries of byConnections.values()) {
    for (const s of summaries) if (s.errors + s.timeouts + s.non2xx > 0) failures.push(`${s.label}, ${s.connections} connections: ${s.errors} errors, ${s.timeouts} timeouts, ${s.non2xx} non-2xx`);
  }
  for (const step of memoryFigures.steps) if (step.failed > 0) failures.push(`memory run: ${step.failed} failed requests`);
  if (limits.failed > 0) failures.push(`rate limit cost: ${limits.failed} failed requests (a 429 means the default limit was reached)`);
  for (const c of cache) if (c.non200 > 0) failures.push(`unseal cache run (${c.pattern}): ${c.non200} failed requests`);
  if (storm.succeeded === 0) failures.push('refresh storm: no request succeeded');
  for (const p of rotation.phases) if (p.failed > 0) failures.push(`rotation memory: ${p.failed} failed requests`);
  failures.push(...redis.failures);

  const date = new Date().toISOString().slice(0, 10);
  const info = machine();
  const results = {
    date,
    smoke: SMOKE,
    durationSeconds: Math.round(elapsedSeconds()),
    machine: info,
    plan: { ...PLAN, signInParallel: SIGN_IN_PARALLEL, accessTokenTtlSeconds: ACCESS_TOKEN_TTL, memoryConnections: MEMORY_CONNECTIONS },
    throughput: Object.fromEntries([...byConnections].map(([connections, summaries]) => [connections, summaries])),
    ratios: Object.fromEntries(
      [...byConnections].map(([connections, summaries]) => {
        const get = (id: ContestantId) => summaries.find((s) => s.id === id)?.requestsPerSecond ?? Number.NaN;
        return [
          connections,
          {
            brokerOneSessionOverFloor2: get('broker1') / get('floor2'),
            brokerOneSessionOverFloor1: get('broker1') / get('floor1'),
            brokerDistinctSessionsOverFloor2: get('brokerN') / get('floor2'),
            brokerDistinctSessionsOverFloor1: get('brokerN') / get('floor1'),
            brokerOneSessionOverFloor3: get('broker1') / get('floor3'),
            brokerDistinctSessionsOverFloor3: get('brokerN') / get('floor3'),
          },
        ];
      }),
    ),
    refreshStorm: storm,
    websocketEcho: echo,
    memory: memoryFigures,
    operatingCost: { rateLimit: limits, inProcess: opsCost },
    rotationMemory: rotation,
    redis: redis.figures,
    dpop,
    unseal: {
      cost: unsealCost,
      cache,
      method:
        "Measured in-process: the broker's own proxy handler (lib/proxy/handler.ts) driven with the same round-robin session pattern as the load runs, reading lib/session/manager.ts unsealStats; the running server exposes no counters.",
    },
    targets,
    failures,
    ...(profile ? { cpuProfile: profile } : {}),
  };

  const caption = `${date} · ${info.cpuModel}, ${info.cores} cores, ${(info.memoryBytes / 1073741824).toFixed(0)} GiB · Node ${info.node} · ${PLAN.rounds} rounds × ${PLAN.seconds} s, autocannon on the same machine`;
  const outDir = SMOKE ? join(os.tmpdir(), 'cloakroom-bench-smoke') : join(ROOT, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `${date}.json`);
  const svgPath = join(outDir, 'latest.svg');
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(svgPath, barChart(byConnections, caption));

  const out: string[] = [];
  out.push('');
  out.push(`Cloakroom benchmark${SMOKE ? ' (SMOKE: figures not meaningful)' : ''} — ${date}`);
  out.push(`${info.cpuModel}, ${info.cores} cores, ${(info.memoryBytes / 1073741824).toFixed(1)} GiB, Node ${info.node}, ${info.os}`);
  out.push('');
  out.push(table(byConnections));
  out.push(`refresh storm   ${storm.parallel} parallel requests, expired ${storm.accessTokenTtlSeconds} s token, rotating provider: ${storm.refreshGrants} refresh grant(s), ${storm.succeeded}/${storm.parallel} succeeded ${JSON.stringify(storm.statusCodes)}, ${storm.cookiesRewritten} answers rewrote the cookie, follow-up with the last cookie ${storm.followUpOk ? 'ok' : 'FAILED'}`);
  out.push(`memory          fresh broker ${(memoryFigures.atStartBytes / 1048576).toFixed(1)} MB; after ${memoryFigures.steps.map((s) => `${s.afterRequests.toLocaleString('en-US')}: ${(s.rssBytes / 1048576).toFixed(1)} MB`).join(', after ')}; growth ${memoryFigures.growthPercent.toFixed(1)} %`);
  out.push(`rotation memory ${rotation.sessions} sessions, ${rotation.accessTokenTtlSeconds} s tokens: ${rotation.phases.map((p, i) => `phase ${i + 1}: ${p.refreshGrants} refreshes, ${p.storeEntries} store entries (${p.entriesPerSession.toFixed(1)} per session), heap ${(p.heapBytes / 1048576).toFixed(1)} MB`).join('; ')}; ${rotation.entriesPerRefresh.toFixed(2)} entries per refresh`);
  out.push(`websocket echo  ${echo.messages} round trips of 64 bytes: median ${echo.direct.medianUs.toFixed(0)} µs directly, ${echo.broker.medianUs.toFixed(0)} µs through the broker (+${echo.addedMedianUs.toFixed(0)} µs, ${echo.medianRatio.toFixed(2)} ×); p99 ${echo.direct.p99Us.toFixed(0)} µs / ${echo.broker.p99Us.toFixed(0)} µs`);
  out.push(`rate limit cost RATE_LIMIT_API default vs off, ${limits.sessions} sessions, ${limits.connections} connections: ${limits.atDefault.map(Math.round).join('/')} vs ${limits.off.map(Math.round).join('/')} req/s → the limit costs ${limits.costPercent.toFixed(1)} % (medians; negative: within the noise)`);
  out.push(`metrics cost    ${(opsCost.metricsNsPerProxyCall / 1000).toFixed(2)} µs per proxied call (counter + histogram), ${opsCost.scrapeMs.toFixed(1)} ms per scrape of ${opsCost.scrapeBytes} bytes; anomaly check unchanged ${(opsCost.anomalyCheckNsUnchanged / 1000).toFixed(2)} µs — in-process`);
  out.push(`unseal cost     ${unsealCost.microsecondsPerUnseal.toFixed(0)} µs per iron-session unsealData (${unsealCost.sealBytes}-byte seal, ${unsealCost.calls} calls); the cache's key costs ${unsealCost.microsecondsPerCacheKey.toFixed(1)} µs`);
  out.push(...redisReport(redis));
  out.push(dpopReport(dpop));
  for (const c of cache) out.push(`unseal cache    ${c.pattern}: ${c.requests} requests → ${c.unseals} unseals, ${c.cacheHits} hits (${(c.hitRatio * 100).toFixed(1)} % spared) — measured in-process with the broker's handler`);
  if (profile) {
    out.push('');
    out.push(`CPU profile of the broker over the throughput runs (${profile.seconds.toFixed(0)} s, ${profile.file}); self time, % of all samples:`);
    out.push(`  by area: ${profile.byArea.map((a) => `${a.name} ${a.selfPercent.toFixed(1)} %`).join(' · ')}`);
    for (const spot of profile.spots) out.push(`  ${spot.selfPercent.toFixed(1).padStart(5)} %  ${spot.name}  ${spot.where}`);
  }
  out.push('');
  out.push('Targets (reported, not asserted):');
  out.push(formatTargets(targets));
  out.push('');
  out.push(`Wrote ${jsonPath} and ${svgPath} (${Math.round(elapsedSeconds())} s in all).`);
  if (failures.length > 0) out.push(`\nFAILED:\n  ${failures.join('\n  ')}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return failures.length > 0 ? 1 : 0;
}

main().then(
  async (code) => {
    await shutdown();
    process.exit(code);
  },
  async (error: unknown) => {
    process.stderr.write(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    await shutdown();
    process.exit(1);
  },
);
