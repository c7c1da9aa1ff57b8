import { routeHandlers } from '../../../lib/http/endpoints.ts';

// The handlers come from the one table of endpoints, which the Node front door reads too.
export const dynamic = 'force-dynamic';
export const { GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS } = routeHandlers('/auth/backchannel-logout');
