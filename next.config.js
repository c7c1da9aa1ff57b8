/** @type {import('next').NextConfig} */
const nextConfig = {
  // The broker never answers with framework fingerprints.
  poweredByHeader: false,
  reactStrictMode: true,
  // oidc-provider is only used by the demo and tests, which run outside Next.
  serverExternalPackages: ['oidc-provider'],
  experimental: {
    // A request that proxy.ts's matcher selects has its body copied by Next.js before the
    // route runs, up to this many bytes (default 10 MB, in memory, twice). The matcher
    // selects only paths proxy.ts refuses, so their bodies are never needed: keep 1 byte.
    proxyClientMaxBodySize: 1,
  },
};

export default nextConfig;
