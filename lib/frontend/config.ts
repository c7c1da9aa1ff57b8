/**
 * The frontend's part of the configuration (BFF_FRONTEND_*; CONTRACT.md): checked once at
 * start with the rest, every problem named with its variable and its fix.
 */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parseCspExtension, type CspDirectives } from './policy.ts';

export interface FrontendConfig {
  /** BFF_FRONTEND_DIR, resolved through symlinks (every served file must stay under it). */
  dir: string | undefined;
  /** BFF_FRONTEND_UPSTREAM: the app's own server, an origin. */
  upstream: URL | undefined;
  /** BFF_FRONTEND_AUTH. */
  auth: 'none' | 'required';
  /** BFF_FRONTEND_CSP, parsed: directives whose sources extend the default policy. */
  cspExtension: CspDirectives;
}

export interface FrontendEnv {
  BFF_FRONTEND_DIR?: string;
  BFF_FRONTEND_UPSTREAM?: string;
  BFF_FRONTEND_AUTH?: 'none' | 'required';
  BFF_FRONTEND_CSP?: string;
}

/** The frontend settings, or undefined when no frontend is configured; problems are pushed. */
export function readFrontendConfig(e: FrontendEnv, problems: string[]): FrontendConfig | undefined {
  const dirGiven = e.BFF_FRONTEND_DIR !== undefined && e.BFF_FRONTEND_DIR !== '';
  const upstreamGiven = e.BFF_FRONTEND_UPSTREAM !== undefined && e.BFF_FRONTEND_UPSTREAM !== '';
  if (dirGiven && upstreamGiven) {
    problems.push('BFF_FRONTEND_DIR and BFF_FRONTEND_UPSTREAM are both set: serve the static build (BFF_FRONTEND_DIR) or proxy the app\'s server (BFF_FRONTEND_UPSTREAM), not both');
    return undefined;
  }
  const cspExtension = parseCspExtension(e.BFF_FRONTEND_CSP ?? '');
  if (typeof cspExtension === 'string') problems.push(`BFF_FRONTEND_CSP ${cspExtension}`);
  if (!dirGiven && !upstreamGiven) {
    if (e.BFF_FRONTEND_AUTH === 'required') problems.push('BFF_FRONTEND_AUTH=required needs a frontend: set BFF_FRONTEND_DIR or BFF_FRONTEND_UPSTREAM');
    return undefined;
  }
  const dir = dirGiven ? frontendDir(e.BFF_FRONTEND_DIR as string, problems) : undefined;
  const upstream = upstreamGiven ? frontendUpstream(e.BFF_FRONTEND_UPSTREAM as string, problems) : undefined;
  return { dir, upstream, auth: e.BFF_FRONTEND_AUTH ?? 'none', cspExtension: typeof cspExtension === 'string' ? {} : cspExtension };
}

function frontendDir(value: string, problems: string[]): string | undefined {
  const absolute = isAbsolute(value) ? value : resolve(value);
  let real: string;
  try {
    real = realpathSync(absolute);
    if (!statSync(real).isDirectory()) throw new Error('not a directory');
  } catch {
    // The value is not repeated (as for every variable): a misplaced secret must not reach the log.
    problems.push(`BFF_FRONTEND_DIR is not a directory (a relative path counts from the broker's working directory): give the folder of the app's build, e.g. the dist/ that \`vite build\` writes`);
    return undefined;
  }
  try {
    if (!statSync(join(real, 'index.html')).isFile()) throw new Error('not a file');
  } catch {
    problems.push(`BFF_FRONTEND_DIR holds no index.html: give the folder of the app's build (run the app's build first)`);
    return undefined;
  }
  return real;
}

function frontendUpstream(value: string, problems: string[]): URL | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push('BFF_FRONTEND_UPSTREAM must be an http(s) origin such as http://localhost:5173');
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push('BFF_FRONTEND_UPSTREAM must be an http(s) origin such as http://localhost:5173');
    return undefined;
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    problems.push('BFF_FRONTEND_UPSTREAM must be an origin only (scheme, host, port), e.g. http://localhost:5173, with no path, query or user info');
    return undefined;
  }
  return url;
}
