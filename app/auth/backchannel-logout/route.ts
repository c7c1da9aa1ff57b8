import { endpoint } from '../../../lib/http/handler.ts';
import { methodNotAllowed } from '../../../lib/http/responses.ts';
import { handleBackchannelLogout } from '../../../lib/oidc/backchannel.ts';

export const dynamic = 'force-dynamic';
export const POST = endpoint(handleBackchannelLogout);
export const GET = async () => methodNotAllowed(['POST']);
