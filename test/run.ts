/**
 * `npm test`: every suite in one run, one production build, one summary line.
 *
 *   unit/        pure logic, no I/O
 *   integration/ lib/ route code driven with Request objects against a real oidc-provider
 *                and real HTTP upstreams started in-process
 *   e2e/         the production build (`next build`, once per run) in headless Chromium
 *   regression/  named after what broke
 *
 * A suite whose prerequisite is missing (no Chromium; no redis-server for the files that
 * start one through helpers/redis-server.ts; no prometheus/promtool for the files that use
 * helpers/prometheus.ts) is SKIPPED loudly; with
 * REQUIRE_ALL=1 (set by .ci/run) a skipped suite fails the run.
 * Usage: node test/run.ts [unit|integration|e2e|regression|<file>...]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, globSync, readFileSync } from 'node:fs';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { chromiumPath } from './helpers/chromium.ts';
import { prometheusPath } from './helpers/prometheus.ts';
import { redisServerPath } from './helpers/redis-server.ts';

const SUITES = ['unit', 'integration', 'regression', 'e2e'] as const;
const requireAll = process.env.REQUIRE_ALL === '1';
const args = process.argv.slice(2);
const wantedSuites = args.length === 0 ? [...SUITES] : SUITES.filter((s) => args.includes(s));
const explicitFiles = args.filter((a) => a.endsWith('.ts'));

const skippedSuites: string[] = [];
const files: string[] = explicitFiles;
if (explicitFiles.length === 0) {
  for (const suite of wantedSuites) {
    const suiteFiles = globSync(`test/${suite}/**/*.test.ts`).sort();
    if (suite === 'e2e' && suiteFiles.length > 0 && !chromiumPath()) {
      skippedSuites.push(`e2e (${suiteFiles.length} files): no Chromium found — install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
      continue;
    }
    const needRedis = redisServerPath() ? [] : suiteFiles.filter((f) => readFileSync(f, 'utf8').includes('helpers/redis-server.ts'));
    if (needRedis.length > 0) {
      skippedSuites.push(`${suite}: ${needRedis.length} Redis files: no redis-server found — install Debian's redis-server (apt-get install redis-server) or set REDIS_SERVER_PATH`);
    }
    const needPrometheus = prometheusPath() ? [] : suiteFiles.filter((f) => readFileSync(f, 'utf8').includes('helpers/prometheus.ts'));
    if (needPrometheus.length > 0) {
      skippedSuites.push(`${suite}: ${needPrometheus.length} Prometheus files: no prometheus/promtool found — install Debian's prometheus (apt-get install prometheus) or set PROMETHEUS_PATH`);
    }
    files.push(...suiteFiles.filter((f) => !needRedis.includes(f) && !needPrometheus.includes(f)));
  }
}

// The e2e files, and any other (regression) file that drives the production server. Those
// run last, after the in-process suites: a `next start` beside the integration files'
// memory and pacing measurements would load the machine under them.
const drivesProductionServer = (f: string) => f.includes('e2e/') || readFileSync(f, 'utf8').includes('production-stack');
const needsBuild = files.some(drivesProductionServer);
files.sort((a, b) => Number(drivesProductionServer(a)) - Number(drivesProductionServer(b)));
if (needsBuild && process.env.SKIP_BUILD !== '1') {
  process.stdout.write('Building the production server once for the end-to-end suite (next build)…\n');
  const build = spawnSync(process.execPath, ['node_modules/next/dist/bin/next', 'build'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  });
  if (build.status !== 0) {
    process.stdout.write('\n0 passed, 1 failed\n');
    process.stderr.write('next build failed\n');
    process.exit(1);
  }
}
if (needsBuild && !existsSync('.next/BUILD_ID')) {
  process.stderr.write('No production build in .next: run `npm run build` or drop SKIP_BUILD.\n');
  process.exit(1);
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];

const stream = run({
  files,
  // Two cores: integration files each run their own provider; two at a time keeps the
  // machine responsive without serialising the whole run.
  concurrency: 2,
  timeout: 180_000,
  isolation: 'process',
});

stream.on('test:pass', (data) => {
  if (data.details.type === 'suite') return;
  if (data.skip || data.todo) skipped++;
  else passed++;
});
stream.on('test:fail', (data) => {
  if (data.details.type === 'suite') {
    // A suite that failed outside its tests (a hook, a crash) still counts once.
    const error = data.details.error as { failureType?: string } | undefined;
    if (error?.failureType === 'subtestsFailed') return;
  }
  failed++;
  failures.push(`${data.file ?? ''} › ${data.name}`);
});

stream.compose(spec).pipe(process.stdout);

stream.on('end', () => {
  const lines: string[] = [''];
  for (const s of skippedSuites) lines.push(`!!! SKIPPED SUITE: ${s}`);
  if (failures.length > 0) lines.push('Failed:', ...failures.map((f) => `  ✖ ${f}`));
  if (skippedSuites.length > 0 && requireAll) {
    lines.push('REQUIRE_ALL=1: a skipped suite fails the run.');
    failed += skippedSuites.length;
  }
  const skipText = skipped + skippedSuites.length > 0 ? `, ${skipped + skippedSuites.length} skipped` : '';
  lines.push(`${passed} passed, ${failed} failed${skipText}`);
  // Let the spec reporter flush first.
  setImmediate(() => {
    process.stdout.write(`${lines.join('\n')}\n`);
    process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
  });
});
