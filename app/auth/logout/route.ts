import { endpoint } from '../../../lib/http/handler.ts';
import { methodNotAllowed } from '../../../lib/http/responses.ts';
import { handleLogout } from '../../../lib/oidc/logout.ts';

export const dynamic = 'force-dynamic';
export const POST = endpoint(handleLogout);
// Logout on GET would let any <img src> sign the user out.
export const GET = async () => methodNotAllowed(['POST']);
