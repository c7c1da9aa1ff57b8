import { endpoint } from '../../../lib/http/handler.ts';
import { handleLogin } from '../../../lib/oidc/login.ts';

export const dynamic = 'force-dynamic';
export const GET = endpoint(handleLogin);
