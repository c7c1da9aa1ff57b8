import { endpoint } from '../../../lib/http/handler.ts';
import { methodNotAllowed } from '../../../lib/http/responses.ts';
import { handleBackchannelLogout } from '../../../lib/oidc/backchannel.ts';

export const dynamic = 'force-dynamic';
export const POST = endpoint(handleBackchannelLogout);
const notAllowed = async () => methodNotAllowed(['POST']);
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
