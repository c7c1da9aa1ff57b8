import { endpoint } from '../../../lib/http/handler.ts';
import { handleOpsMetrics } from '../../../lib/ops/metrics-endpoint.ts';
import { opsMethodNotAllowed } from '../../../lib/ops/ops-auth.ts';

export const dynamic = 'force-dynamic';
// Not Host-checked: the bearer OPS_TOKEN is the credential, and Prometheus scrapes each instance by address.
export const GET = endpoint(handleOpsMetrics, { checkHost: false });
export const HEAD = GET;
const notAllowed = endpoint(opsMethodNotAllowed(['GET', 'HEAD']), { checkHost: false });
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
