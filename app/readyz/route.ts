import { endpoint } from '../../lib/http/handler.ts';
import { methodNotAllowed } from '../../lib/http/responses.ts';
import { handleReadiness } from '../../lib/ops/readiness.ts';

export const dynamic = 'force-dynamic';
// No Host check: load balancers and Kubernetes probes address the instance by its IP, and
// readiness tells nothing about a user (lib/http/handler.ts).
export const GET = endpoint(handleReadiness, { checkHost: false });
// Without these, Next.js answers other methods with an empty 405 (no error body, no
// Cache-Control, no Allow); the contract's 405 is `{"error": "method_not_allowed"}`.
const notAllowed = async () => methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
