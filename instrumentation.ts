/**
 * Runs once when a server instance starts (`next start`, or a new serverless instance on
 * Vercel, where `npm start`'s own check does not run): a broker with a bad configuration
 * refuses to come up, listing every problem, instead of answering half-working.
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME === 'nodejs') {
    // Before the first request is handled: `next start` drops the socket's peer when the
    // client sends its own X-Forwarded-For; rate limits need it (lib/ops/client-address.ts).
    const { installPeerHook } = await import('./lib/ops/client-address.ts');
    installPeerHook();
    const { checkConfigAtStartup } = await import('./lib/config/startup.ts');
    checkConfigAtStartup();
    if (process.env.NEXT_PHASE !== 'phase-production-build') {
      // Discovery once at start, so that a mistyped OIDC_ISSUER is the first thing the log
      // says (expected and received issuer, the URL, the status). It never blocks or
      // refuses the start: the provider may simply not be up yet.
      const [{ probeProvider }, { getConfig }] = await Promise.all([import('./lib/oidc/provider.ts'), import('./lib/config/load.ts')]);
      void probeProvider(getConfig());
    }
  }
}
