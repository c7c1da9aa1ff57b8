import { jsonResponse } from '../../lib/http/responses.ts';

export const dynamic = 'force-dynamic';
export const GET = async () => jsonResponse({ status: 'ok' });
