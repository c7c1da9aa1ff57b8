/**
 * Deliberately empty. Without an instrumentation file of its own, Turbopack (whose root
 * is the repository) would pick up the broker's, which refuses to start without the
 * broker's configuration — and the floor is meant to run no broker code at all.
 */
export function register(): void {}
