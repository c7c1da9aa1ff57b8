/**
 * A real, throw-away Prometheus for tests: Debian's `prometheus` on a free port, with its
 * own TSDB in a temp directory, scraping the given broker instances' `/ops/metrics` every
 * second with the bearer token read from a file (`authorization.credentials_file`, as the
 * README tells operators), evaluating the repository's alert rules every second; stopped
 * by PID. `promtool` comes from the same package.
 *
 * When either is not installed, `prometheusPath()` is undefined: test/run.ts skips the
 * files that import this helper loudly (and fails under REQUIRE_ALL=1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

const READY_TIMEOUT_MS = 20_000;
export const ALERT_RULES = fileURLToPath(new URL('../../ops/prometheus/alerts.yml', import.meta.url));
export const ALERT_RULE_TESTS = fileURLToPath(new URL('../../ops/prometheus/alerts.test.yml', import.meta.url));
export const DASHBOARD = fileURLToPath(new URL('../../ops/grafana/cloakroom.json', import.meta.url));

function found(candidates: Array<string | undefined>): string | undefined {
  return candidates.find((p): p is string => !!p && existsSync(p));
}

export function promtoolPath(): string | undefined {
  return found([process.env.PROMTOOL_PATH, '/usr/bin/promtool', '/usr/local/bin/promtool']);
}

/** Both binaries of Debian's `prometheus` package, or undefined. */
export function prometheusPath(): string | undefined {
  const server = found([process.env.PROMETHEUS_PATH, '/usr/bin/prometheus', '/usr/local/bin/prometheus']);
  return server && promtoolPath() ? server : undefined;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  url: string;
  readonly pid: number;
  /** `/api/v1/query`: throws with Prometheus's own error text on a bad expression. */
  query(expr: string): Promise<PromSample[]>;
  /** Any `/api/v1/...` GET, its `data`. */
  api<T = unknown>(pathAndQuery: string): Promise<T>;
  /** The scrape config as written (to check it carries no token itself). */
  configText: string;
  close(): Promise<void>;
}

export async function startPrometheus(options: { targets: string[]; bearerToken: string; job?: string }): Promise<RunningPrometheus> {
  const binary = prometheusPath();
  if (!binary) throw new Error("prometheus/promtool not found: install Debian's prometheus package (apt-get install prometheus) or set PROMETHEUS_PATH");
  const dir = mkdtempSync(join(tmpdir(), 'cloakroom-prometheus-'));
  const tokenFile = join(dir, 'ops-token');
  writeFileSync(tokenFile, options.bearerToken, { mode: 0o600 });
  const configText = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${JSON.stringify(ALERT_RULES)}`,
    'scrape_configs:',
    `  - job_name: ${options.job ?? 'cloakroom'}`,
    '    metrics_path: /ops/metrics',
    '    authorization:',
    '      type: Bearer',
    `      credentials_file: ${JSON.stringify(tokenFile)}`,
    '    static_configs:',
    `      - targets: ${JSON.stringify(options.targets)}`,
    '',
  ].join('\n');
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, configText);
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => child.kill('SIGKILL'));

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${Buffer.concat(stderr).toString('utf8')}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready within ${READY_TIMEOUT_MS} ms: ${Buffer.concat(stderr).toString('utf8')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const response = await fetch(`${url}/api/v1/${pathAndQuery}`);
    const body = (await response.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${pathAndQuery}: ${body.errorType}: ${body.error}`);
    return body.data;
  };
  return {
    url,
    get pid() {
      return child.pid as number;
    },
    configText,
    api,
    query: async (expr) => (await api<{ result: PromSample[] }>(`query?query=${encodeURIComponent(expr)}`)).result,
    close: stop,
  };
}
