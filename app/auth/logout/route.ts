import { endpoint } from '../../../lib/http/handler.ts';
import { methodNotAllowed } from '../../../lib/http/responses.ts';
import { handleLogout } from '../../../lib/oidc/logout.ts';

export const dynamic = 'force-dynamic';
export const POST = endpoint(handleLogout);
// Logout on GET would let any <img src> sign the user out.
const notAllowed = async () => methodNotAllowed(['POST']);
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
