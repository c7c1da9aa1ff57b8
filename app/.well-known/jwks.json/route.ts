import { routeHandlers } from '../../../lib/http/endpoints.ts';

export const dynamic = 'force-dynamic';
// The handlers live in the one endpoint table, which the npm start front door reads too.
export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = routeHandlers('/.well-known/jwks.json');
