/**
 * `npm start`: validates the configuration first, listing every problem at once, and
 * only then starts the production server on PORT. A broker with a bad configuration
 * never starts half-working.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { ConfigError, loadConfig } from '../lib/config/load.ts';

let port: number;
try {
  port = loadConfig(process.env).port;
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`Cloakroom cannot start. ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

const nextBin = createRequire(import.meta.url).resolve('next/dist/bin/next');
const server = spawn(process.execPath, [nextBin, 'start', '--port', String(port)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => server.kill(signal));
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
