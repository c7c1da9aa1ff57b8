import { fileURLToPath } from 'node:url';

/** The benchmark's floor app: a separate Next.js app, never part of the broker's build. */
const nextConfig = {
  poweredByHeader: false,
  // The workspace is the repository (one lockfile, one node_modules).
  turbopack: { root: fileURLToPath(new URL('../../', import.meta.url)) },
};

export default nextConfig;
