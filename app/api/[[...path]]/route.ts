import { endpoint } from '../../../lib/http/handler.ts';
import { handleProxy } from '../../../lib/proxy/handler.ts';

export const dynamic = 'force-dynamic';

const proxy = endpoint(handleProxy);
export const GET = proxy;
export const HEAD = proxy;
export const POST = proxy;
export const PUT = proxy;
export const PATCH = proxy;
export const DELETE = proxy;
export const OPTIONS = proxy;
