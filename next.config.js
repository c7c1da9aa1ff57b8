/** @type {import('next').NextConfig} */
const nextConfig = {
  // The broker never answers with framework fingerprints.
  poweredByHeader: false,
  reactStrictMode: true,
  // oidc-provider is only used by the demo and tests, which run outside Next.
  serverExternalPackages: ['oidc-provider'],
};

export default nextConfig;
