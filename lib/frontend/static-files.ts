/**
 * Reading one file of the frontend's build as an answer: type, caching, validators.
 *
 * A small handler of our own rather than `send` or `serve-static`: those write to a node
 * `ServerResponse`, while every handler in lib/ is a `Request` in and a `Response` out
 * (the front door converts once, server/adapter.ts); and the rules that matter here are
 * the broker's own — which paths may fall back to index.html, which navigations are
 * gated, the security headers — with the path checks of paths.ts and a realpath check
 * that `send` does not make (it follows a symlink out of its root). Types come from
 * `mime-types` (mime-db), the table `send` itself uses.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Readable } from 'node:stream';
import mime from 'mime-types';

export interface FoundFile {
  /** The real path, inside the directory. */
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * The regular file that `segments` name under `root` (itself a realpath), or undefined:
 * missing, a directory (never listed), or a symlink whose target is outside `root`.
 */
export async function findFile(root: string, segments: readonly string[]): Promise<FoundFile | undefined> {
  if (segments.length === 0) return undefined;
  let real: string;
  try {
    real = await realpath(join(root, ...segments));
  } catch {
    return undefined;
  }
  // The resolved file, links followed, must still be under the directory.
  if (!real.startsWith(root + sep)) return undefined;
  try {
    const info = await stat(real);
    if (!info.isFile()) return undefined;
    return { path: real, size: info.size, mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}

/**
 * A content-hashed name: Vite's `assets/index-BXlz3Kq9.js`, CRA's `main.8e3a7c21.js`,
 * Angular's `main.3f2a1b4c5d6e7f80.js` — a `-` or `.` then 8+ characters of a hash
 * alphabet, at least one a digit, before the extension. Such a file never changes under
 * its name, so browsers may keep it for a year without asking again.
 */
const HASHED_NAME = /[.-](?=[A-Za-z0-9_]*\d)[A-Za-z0-9_]{8,}\.[A-Za-z0-9]+$/;

/** Cache-Control for a file of the build. */
export function cacheControlFor(segments: readonly string[]): string {
  const name = segments[segments.length - 1] ?? '';
  if (name.endsWith('.html')) return 'no-cache';
  // Vite puts every hashed output under assets/ (build.assetsDir).
  if ((segments[0] === 'assets' && segments.length > 1 && HASHED_NAME.test(name)) || HASHED_NAME.test(name)) {
    return 'public, max-age=31536000, immutable';
  }
  // favicon.ico, robots.txt, manifest.json: kept, but revalidated (ETag) on each use.
  return 'no-cache';
}

export function contentTypeFor(path: string): string {
  return mime.contentType(path.slice(path.lastIndexOf(sep) + 1)) || 'application/octet-stream';
}

/** A weak validator from size and modification time (RFC 9110 §8.8.3): cheap, and changes with a rebuild. */
export function etagOf(file: FoundFile): string {
  return `W/"${file.size.toString(16)}-${Math.floor(file.mtimeMs).toString(16)}"`;
}

/** Whether If-None-Match names this file's ETag (weak comparison, RFC 9110 §13.1.2). */
export function notModified(request: Request, etag: string): boolean {
  const header = request.headers.get('if-none-match');
  if (header === null) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare);
}

/** The file's bytes, streamed (a HEAD gets none). */
export function fileBody(file: FoundFile, method: string): ReadableStream<Uint8Array> | null {
  if (method === 'HEAD') return null;
  return Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>;
}
