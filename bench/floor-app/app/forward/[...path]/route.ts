/**
 * Floor 2 of the benchmark: what a team would write by hand instead of a broker — a bare
 * route that forwards to the API with global fetch and a fixed bearer token, and does
 * nothing else (no session, no CSRF check, no header hygiene beyond what fetch needs).
 * Not part of the product; built and started only by `npm run bench`.
 */
const upstream = process.env.FLOOR_UPSTREAM ?? 'http://127.0.0.1:1';
const authorization = `Bearer ${process.env.FLOOR_TOKEN ?? ''}`;

export const dynamic = 'force-dynamic';

export async function GET(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const answer = await fetch(`${upstream}${url.pathname.slice('/forward'.length)}${url.search}`, {
    headers: { authorization },
  });
  const headers = new Headers(answer.headers);
  // fetch has already decoded the body: its original encoding and length no longer apply.
  headers.delete('content-encoding');
  headers.delete('content-length');
  return new Response(answer.body, { status: answer.status, headers });
}
