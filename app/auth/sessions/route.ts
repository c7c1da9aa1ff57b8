import { endpoint } from '../../../lib/http/handler.ts';
import { methodNotAllowed } from '../../../lib/http/responses.ts';
import { handleListSessions } from '../../../lib/session/sessions-endpoint.ts';

export const dynamic = 'force-dynamic';
export const GET = endpoint(handleListSessions);
const notAllowed = async () => methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE, notAllowed as OPTIONS };
