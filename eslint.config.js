import next from 'eslint-config-next';
import nextTs from 'eslint-config-next/typescript';

const config = [
  ...next,
  ...nextTs,
  { ignores: ['.next/**', 'node_modules/**', '.tools/**', 'next-env.d.ts', 'bench/results/**', 'bench/floor-app/.next/**', 'bench/floor-app/next-env.d.ts', 'examples/spa/dist/**', 'examples/.dev-copy-*/**'] },
];

export default config;
