import next from 'eslint-config-next';
import nextTs from 'eslint-config-next/typescript';

const config = [
  ...next,
  ...nextTs,
  { ignores: ['.next/**', 'node_modules/**', '.tools/**', 'next-env.d.ts', 'bench/results/**'] },
];

export default config;
