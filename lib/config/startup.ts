import { ConfigError, getConfig, type Config } from './load.ts';
import { log } from '../log.ts';

/**
 * Runs once per server process (instrumentation.ts): under `npm start`, a bare
 * `next start` and a new serverless instance alike. Exits listing every configuration
 * problem; skipped during `next build`, which runs without secrets.
 */
export function checkConfigAtStartup(): Config | undefined {
  if (process.env.NEXT_PHASE === 'phase-production-build') return undefined;
  let config: Config;
  try {
    config = getConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Cloakroom cannot start. ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  return config;
}

/**
 * Without REDIS_URL or REDIS_CLUSTER_NODES, what the broker must remember beyond a cookie
 * lives in this process: a restart brings logged-out cookie copies back to life, and a
 * second instance sees none of it. Said once, loudly, at start (AUDIT M6).
 */
export function warnAboutProcessMemory(config: Config): void {
  if (config.redis.url || config.redis.clusterNodes.length > 0) return;
  log.warn('store_in_process_memory', {
    message:
      'No shared store (REDIS_URL unset): ended sessions, back-channel logouts, spent refresh tokens and refresh coordination live in this process only. ' +
      'A restart forgets them, so copies of logged-out cookies work again until they expire; run one instance only, or set REDIS_URL.',
  });
}
