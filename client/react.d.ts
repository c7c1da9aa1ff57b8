import type { SessionState } from './index.js';

/** The session state, re-rendered on every change (this tab's or another's). Loads it on first use. */
export function useSession(): SessionState;
