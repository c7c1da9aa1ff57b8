import type { Config } from '../config/load.ts';
import { jsonResponse } from '../http/responses.ts';
import { getProvider } from '../oidc/provider.ts';
import type { KeyValueStore } from '../stores/store.ts';

/**
 * `GET /readyz`, for load balancers: this instance can serve sign-ins and API calls when
 * the provider's metadata is loaded (discovery done, or done now) and the store answers.
 * Each check is reported on its own, so that an operator sees which one is down. A check
 * that does not settle within `CHECK_DEADLINE_MS` counts as down: a readiness probe must
 * answer before the balancer's own timeout, whatever the provider does.
 *
 * The store is asked for a key that nothing writes: a real round trip, no write traffic.
 */
const CHECK_DEADLINE_MS = 2_000;
const PROBE_KEY = 'readyz:probe';

async function passes(check: () => Promise<unknown>): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'down'>((resolve) => {
    timer = setTimeout(() => resolve('down'), CHECK_DEADLINE_MS);
  });
  try {
    return await Promise.race([check().then((): 'ok' => 'ok', (): 'down' => 'down'), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export async function handleReadiness(_request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  const [idp, storeCheck] = await Promise.all([passes(() => getProvider(config)), passes(() => store.get(PROBE_KEY))]);
  if (idp === 'ok' && storeCheck === 'ok') return jsonResponse({ status: 'ready' });
  return jsonResponse({ status: 'unavailable', checks: { idp, store: storeCheck } }, 503);
}
