import { ConfigError, getConfig, type Config } from '../config/load.ts';
import { log } from '../log.ts';
import { checkHost } from '../security/host.ts';
import { getStore, type KeyValueStore } from '../stores/index.ts';
import { errorResponse, jsonResponse } from './responses.ts';

export type Handler = (request: Request, config: Config, store: KeyValueStore) => Promise<Response>;

/**
 * The seam between Next.js and lib/: a route exports `endpoint(handler)`, and the
 * handler gets the request, the configuration and the store, and returns a Response.
 * Every throw becomes the contract's error body here, in one place. Every endpoint
 * first checks that `Host` names the configured origin (DNS rebinding, `security/host.ts`).
 */
export interface EndpointOptions {
  /**
   * Default true. False only for an endpoint that a rebinding page gains nothing from:
   * one that demands its own credential (the `/ops/` bearer token) or that probes call by
   * address (`/readyz`): Prometheus and Kubernetes send the pod's IP as `Host`.
   */
  checkHost?: boolean;
}

export function endpoint(handler: Handler, options: EndpointOptions = {}): (request: Request) => Promise<Response> {
  const hostChecked = options.checkHost ?? true;
  return async (request) => {
    let config: Config;
    try {
      config = getConfig();
    } catch (error) {
      if (error instanceof ConfigError) {
        log.error('configuration_invalid', { problems: error.problems.join(' | ') });
        return jsonResponse({ error: 'server_misconfigured' }, 500);
      }
      throw error;
    }
    try {
      if (hostChecked) checkHost(request, config);
      return await handler(request, config, getStore());
    } catch (error) {
      return errorResponse(error);
    }
  };
}
