/**
 * The browser client's weight, measured on every run: client/index.js minified (esbuild)
 * and gzipped (node:zlib, level 9 as a CDN would) must stay under 3 kB, the README's
 * figure. The React hook is measured too, without React (the app's own copy).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { transform } from 'esbuild';

const LIMIT = 3 * 1024;

async function minifiedGzipped(file: string): Promise<{ minified: number; gzipped: number }> {
  const { code } = await transform(readFileSync(file, 'utf8'), { minify: true, format: 'esm', target: 'es2022', loader: 'js' });
  return { minified: Buffer.byteLength(code), gzipped: gzipSync(code, { level: 9 }).length };
}

test('the browser client is under 3 kB minified and gzipped', async () => {
  const core = await minifiedGzipped('client/index.js');
  const hook = await minifiedGzipped('client/react.js');
  process.stdout.write(`client/index.js: ${core.minified} B minified, ${core.gzipped} B gzipped; client/react.js: ${hook.minified} B minified, ${hook.gzipped} B gzipped\n`);
  assert.ok(core.gzipped + hook.gzipped < LIMIT, `the client weighs ${core.gzipped + hook.gzipped} B gzipped`);
});

test('the browser client has no dependency but React for the hook', () => {
  const manifest = JSON.parse(readFileSync('client/package.json', 'utf8')) as Record<string, unknown>;
  assert.equal(manifest.dependencies, undefined);
  assert.doesNotMatch(readFileSync('client/index.js', 'utf8'), /^\s*import\s/m);
  const imports = [...readFileSync('client/react.js', 'utf8').matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  assert.deepEqual(imports.sort(), ['./index.js', 'react']);
});
