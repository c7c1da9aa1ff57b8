import type { Config } from '../config/load.ts';
import { metrics } from './metrics.ts';
import { checkOpsToken } from './ops-auth.ts';

/**
 * `GET /ops/metrics`: the process's registry in Prometheus text format, behind the
 * OPS_TOKEN bearer gate (404 while it is unset). Each instance answers for itself; a
 * Prometheus scrapes every instance (by address: not Host-checked) and sums. Never
 * cached: a CDN in front must not serve one instance's figures as another's.
 */
export async function handleOpsMetrics(request: Request, config: Config): Promise<Response> {
  checkOpsToken(request, config);
  const registry = metrics.registry();
  return new Response(request.method === 'HEAD' ? null : await registry.metrics(), {
    status: 200,
    headers: { 'content-type': registry.contentType, 'cache-control': 'no-store' },
  });
}
