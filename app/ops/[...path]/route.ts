import { BrokerError } from '../../../lib/errors.ts';
import { endpoint } from '../../../lib/http/handler.ts';

export const dynamic = 'force-dynamic';
// Any other /ops/ path: the contract's JSON 404, not Next's HTML page (named endpoints win over this catch-all).
const notFound = endpoint(async () => {
  throw new BrokerError('not_found');
}, { checkHost: false });
export { notFound as GET, notFound as HEAD, notFound as POST, notFound as PUT, notFound as PATCH, notFound as DELETE, notFound as OPTIONS };
