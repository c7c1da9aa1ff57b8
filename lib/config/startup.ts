import { ConfigError, getConfig } from './load.ts';

/** Exits the process listing every configuration problem. Skipped during `next build`, which runs without secrets. */
export function checkConfigAtStartup(): void {
  if (process.env.NEXT_PHASE === 'phase-production-build') return;
  try {
    getConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Cloakroom cannot start. ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}
