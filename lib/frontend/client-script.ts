/**
 * `GET /auth/client.js` (CONTRACT.md): the browser client (client/index.js) as an ES
 * module, for an app that loads it with `<script type="module">` or `import()` instead
 * of installing it. A file of the same origin, so the strictest CSP (`script-src 'self'`)
 * allows it. Its URL carries no version, so it is cached briefly and revalidated by ETag
 * (a deploy reaches every browser within five minutes) rather than kept for a year.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Handler } from '../http/handler.ts';
import { BrokerError } from '../errors.ts';
import { notModified } from './static-files.ts';

let loaded: { source: string; etag: string } | undefined;

/**
 * Read once from the repository's client/ folder. From the working directory, which is
 * the project root under `npm start`, `next start` and `next dev`: a path relative to
 * this module would point into Next's build output.
 */
function clientSource(): { source: string; etag: string } {
  if (!loaded) {
    const source = readFileSync(join(process.cwd(), 'client', 'index.js'), 'utf8');
    loaded = { source, etag: `"${createHash('sha256').update(source).digest('base64url').slice(0, 27)}"` };
  }
  return loaded;
}

export const handleClientScript: Handler = async (request) => {
  let script: { source: string; etag: string };
  try {
    script = clientSource();
  } catch {
    throw new BrokerError('not_found', { publicMessage: 'the browser client is not deployed with this broker' });
  }
  const headers = new Headers({
    'content-type': 'text/javascript; charset=utf-8',
    'cache-control': 'public, max-age=300, must-revalidate',
    etag: script.etag,
    'x-content-type-options': 'nosniff',
    // Only this origin's pages may load it (no other site can include it cross-origin).
    'cross-origin-resource-policy': 'same-origin',
  });
  if (notModified(request, script.etag)) return new Response(null, { status: 304, headers });
  return new Response(script.source, { status: 200, headers });
};
