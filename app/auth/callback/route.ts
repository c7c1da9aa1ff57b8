import { endpoint } from '../../../lib/http/handler.ts';
import { handleCallback } from '../../../lib/oidc/callback.ts';

export const dynamic = 'force-dynamic';
export const GET = endpoint(handleCallback);
