/**
 * The example app (examples/spa): built with Vite into a fresh directory once per test
 * file, or run as its own dev server on a free port (stopped by PID with the test).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VITE = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');

/** `vite build` of the example into a temporary directory; returns it (holds index.html and assets/). */
export function buildExampleSpa(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cloakroom-spa-dist-'));
  const build = spawnSync(process.execPath, [VITE, 'build', 'examples/spa', '--outDir', dir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (build.status !== 0) throw new Error(`vite build of examples/spa failed:\n${build.stdout}\n${build.stderr}`);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ExampleDevServer {
  url: string;
  port: number;
  /** The copy of the example the dev server serves (edit its files to see hot reload). */
  root: string;
  close(): Promise<void>;
}

/**
 * `vite` (the dev server) on a copy of the example, so that a test may edit its sources
 * without touching the repository. The copy sits inside examples/ for module resolution
 * (react from the repository's node_modules, the client from ../../client).
 */
export async function startExampleDevServer(options: { recordRequestsTo?: string } = {}): Promise<ExampleDevServer> {
  const root = mkdtempSync(join(ROOT, 'examples', '.dev-copy-'));
  cpSync(join(ROOT, 'examples', 'spa'), root, { recursive: true, filter: (source) => !source.includes(`${join('spa', 'dist')}`) });
  let config = join(root, 'vite.config.js');
  if (options.recordRequestsTo) {
    // The example's own configuration plus a plugin that writes down every request and
    // upgrade the dev server receives, headers included (what reached the app's server).
    config = join(root, 'vite.record.config.js');
    writeFileSync(
      config,
      `import { appendFileSync } from 'node:fs';
import base from './vite.config.js';
const log = ${JSON.stringify(options.recordRequestsTo)};
const record = (kind, req) => appendFileSync(log, JSON.stringify({ kind, url: req.url, headers: req.headers }) + '\\n');
export default {
  ...base,
  plugins: [...base.plugins, { name: 'record-requests', configureServer(server) {
    server.middlewares.use((req, _res, next) => { record('request', req); next(); });
    server.httpServer?.prependListener('upgrade', (req) => record('upgrade', req));
  } }],
};
`,
    );
  }
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [VITE, root, '--config', config, '--port', String(port), '--strictPort', '--host', '127.0.0.1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', () => child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const response = await fetch(`${url}/`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      if (response.ok) return { url, port, root, close };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await close();
  throw new Error(`the example's dev server did not start:\n${output}`);
}
