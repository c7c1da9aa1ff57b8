/**
 * Runs once when a server instance starts (`next start`, or a new serverless instance on
 * Vercel, where `npm start`'s own check does not run): a broker with a bad configuration
 * refuses to come up, listing every problem, instead of answering half-working.
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME === 'nodejs') {
    // Traces when OTEL_* asks for them (README "Traces"): the same path on `next start` and
    // on Vercel, the SDK loaded only then. Under `npm start` scripts/start.ts has already
    // started it, and this finds that one.
    const { startTracing } = await import('./lib/ops/tracing-sdk.ts');
    await startTracing();
    // Before the first request is handled: `next start` drops the socket's peer when the
    // client sends its own X-Forwarded-For; rate limits need it (lib/ops/client-address.ts).
    const { installPeerHook } = await import('./lib/ops/client-address.ts');
    installPeerHook();
    const { checkConfigAtStartup, warnAboutProcessMemory } = await import('./lib/config/startup.ts');
    const config = checkConfigAtStartup();
    if (config) {
      // Discovery once at start, and its verdict before anything else is said, so that a
      // mistyped OIDC_ISSUER is the first warning in the log (expected and received issuer,
      // the URL, the status). It never refuses the start (the provider may simply not be
      // up yet) and holds it for at most a few seconds.
      const { probeProvider } = await import('./lib/oidc/provider.ts');
      await Promise.race([probeProvider(config).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 3_000).unref())]);
      warnAboutProcessMemory(config);
    }
  }
}
