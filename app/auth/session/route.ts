import { endpoint } from '../../../lib/http/handler.ts';
import { handleSession } from '../../../lib/session/endpoint.ts';

export const dynamic = 'force-dynamic';
export const GET = endpoint(handleSession);
