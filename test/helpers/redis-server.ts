/**
 * Real, throw-away Redis servers for tests: Debian's `redis-server` on a free port, in
 * the foreground, with no persistence, stopped by PID. `pause()`/`resume()` send
 * SIGSTOP/SIGCONT (a stalled server that keeps its connections and its data);
 * `restart()` kills it and starts a fresh, empty one on the same port.
 *
 * When `redis-server` is not installed, `redisServerPath()` is undefined: test/run.ts
 * skips the files that need it loudly (and fails under REQUIRE_ALL=1), and files that
 * call `startRedis()` anyway fail with a clear message.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

const READY_TIMEOUT_MS = 10_000;

export function redisServerPath(): string | undefined {
  const candidates = [process.env.REDIS_SERVER_PATH, '/usr/bin/redis-server', '/usr/local/bin/redis-server'];
  return candidates.find((p): p is string => !!p && existsSync(p));
}

function redisCliPath(): string {
  const server = redisServerPath();
  const cli = server ? join(server, '..', 'redis-cli') : undefined;
  if (!cli || !existsSync(cli)) throw new Error('redis-cli is missing next to redis-server (Debian: apt-get install redis-server)');
  return cli;
}

/* Every server this process started, so that none outlives it. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

async function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.write('PING\r\n');
    });
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
  });
}

function launch(port: number, extraArgs: string[] = [], cwd?: string): ChildProcess {
  const server = redisServerPath();
  if (!server) throw new Error('redis-server is not installed (Debian: apt-get install redis-server, or set REDIS_SERVER_PATH)');
  installExitHook();
  const child = spawn(server, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...extraArgs], {
    stdio: 'ignore',
    cwd,
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function waitReady(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    if (await acceptsConnections(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer within ${READY_TIMEOUT_MS} ms`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL'); // also ends a SIGSTOPped server
  await exited;
}

export interface RedisServer {
  port: number;
  url: string;
  /** The server process's PID (changes with `restart()`). */
  readonly pid: number;
  /** SIGSTOP: the server keeps its connections and data but answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** SIGKILL, then a fresh empty server on the same port. */
  restart(): Promise<void>;
  /** SIGKILL and leave it down (`restart()` brings it back). */
  kill(): Promise<void>;
  /** `redis-cli` against this server, e.g. `cli('KEYS', '*')`; stdout lines. */
  cli(...args: string[]): string[];
  close(): Promise<void>;
}

export interface TlsRedisServer extends RedisServer {
  /** PEM file of the server's self-signed certificate: the CA a client must trust (NODE_EXTRA_CA_CERTS). */
  caFile: string;
  /** The `default` user's password (also in `url`). */
  password: string;
}

/**
 * A server that speaks only TLS (`rediss://`) and requires a password: a self-signed
 * certificate for localhost/127.0.0.1 made with openssl, the plain port closed.
 */
export async function startTlsRedis(): Promise<TlsRedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'cloakroom-redis-tls-'));
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8', timeout: 30_000 });
  if (made.status !== 0) throw new Error(`openssl could not make a test certificate: ${made.stderr}`);
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();
  const args = ['--port', '0', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no', '--requirepass', password];
  const server = redisServerPath();
  if (!server) throw new Error('redis-server is not installed (Debian: apt-get install redis-server, or set REDIS_SERVER_PATH)');
  installExitHook();
  const start = () => {
    const child = spawn(server, ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...args], { stdio: 'ignore' });
    live.add(child);
    child.once('exit', () => live.delete(child));
    return child;
  };
  const ready = async (child: ChildProcess) => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (runCliTls(port, cert, password, ['PING'], true)[0] !== 'PONG') {
      if (child.exitCode !== null) throw new Error(`redis-server (TLS) on port ${port} exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`redis-server (TLS) on port ${port} did not answer within ${READY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  let child = start();
  await ready(child);
  return {
    port,
    url: `rediss://default:${password}@localhost:${port}`,
    caFile: cert,
    password,
    get pid() {
      return child.pid as number;
    },
    pause: () => {
      child.kill('SIGSTOP');
    },
    resume: () => {
      child.kill('SIGCONT');
    },
    kill: () => stop(child),
    restart: async () => {
      await stop(child);
      child = start();
      await ready(child);
    },
    cli: (...cliArgs) => runCliTls(port, cert, password, cliArgs, false),
    close: async () => {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function runCliTls(port: number, ca: string, password: string, args: string[], quiet: boolean): string[] {
  const result = spawnSync(redisCliPath(), ['-h', '127.0.0.1', '-p', String(port), '--tls', '--cacert', ca, '--no-auth-warning', '-a', password, ...args], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) {
    if (quiet) return [];
    throw new Error(`redis-cli ${args[0]} failed: ${result.stderr}`);
  }
  return result.stdout.split('\n').filter((line) => line.length > 0);
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let child = launch(port);
  await waitReady(port, child);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child.pid as number;
    },
    pause: () => {
      child.kill('SIGSTOP');
    },
    resume: () => {
      child.kill('SIGCONT');
    },
    kill: () => stop(child),
    restart: async () => {
      await stop(child);
      child = launch(port);
      await waitReady(port, child);
    },
    cli: (...args) => runCli(port, args),
    close: () => stop(child),
  };
}

function runCli(port: number, args: string[]): string[] {
  const result = spawnSync(redisCliPath(), ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) throw new Error(`redis-cli ${args[0]} failed: ${result.stderr}`);
  return result.stdout.split('\n').filter((line) => line.length > 0);
}

export interface RedisCluster {
  /** `127.0.0.1:<port>` of each master: the value of REDIS_CLUSTER_NODES. */
  nodes: string[];
  /** `redis-cli -c` against the first node (follows redirections). */
  cli(...args: string[]): string[];
  /** The keys each master holds (KEYS per node; a cluster has no global KEYS). */
  keysByNode(): string[][];
  close(): Promise<void>;
}

/** Three masters, no replicas, slots spread by `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cloakroom-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  // A cluster bus port is the data port + 10000: it must be free too.
  if (ports.some((p) => p + 10_000 > 65_535)) {
    rmSync(dir, { recursive: true, force: true });
    return startRedisCluster();
  }
  const children = ports.map((port) =>
    launch(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '2000'], dir),
  );
  const close = async () => {
    for (const child of children) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(ports.map((port, i) => waitReady(port, children[i])));
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    const created = spawnSync(redisCliPath(), ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    // The nodes agree on the slot map a moment after creation.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!ports.every((port) => runCli(port, ['CLUSTER', 'INFO']).some((line) => line.startsWith('cluster_state:ok')))) {
      if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return {
      nodes,
      cli: (...args) => runCli(ports[0], ['-c', ...args]),
      keysByNode: () => ports.map((port) => runCli(port, ['KEYS', '*'])),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
