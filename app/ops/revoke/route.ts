import { endpoint } from '../../../lib/http/handler.ts';
import { handleOpsRevoke } from '../../../lib/ops/ops-sessions.ts';
import { opsMethodNotAllowed } from '../../../lib/ops/ops-auth.ts';

export const dynamic = 'force-dynamic';
// Not Host-checked: the bearer OPS_TOKEN is the credential, and operators' tools call by address.
export const POST = endpoint(handleOpsRevoke, { checkHost: false });
const notAllowed = endpoint(opsMethodNotAllowed(['POST']), { checkHost: false });
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
