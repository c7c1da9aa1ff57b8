import { endpoint } from '../../../../lib/http/handler.ts';
import { methodNotAllowed } from '../../../../lib/http/responses.ts';
import { handleRevokeSessions } from '../../../../lib/session/sessions-endpoint.ts';

export const dynamic = 'force-dynamic';
export const POST = endpoint(handleRevokeSessions);
// Ending sessions on GET would let any <img src> do it.
const notAllowed = async () => methodNotAllowed(['POST']);
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
