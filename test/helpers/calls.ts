/**
 * A same-origin call carrying exactly the given Cookie header (not a jar: the test picks
 * which copy of a session cookie is sent), and what the answer did to the session cookie.
 */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
  /** `name=value` of the session cookie(s) set, or undefined when none was set. */
  newCookie: string | undefined;
  /** The answer expired the session cookie. */
  cleared: boolean;
  setCookies: string[];
}

export async function answerOf(response: Response): Promise<Answer> {
  const setCookies = response.headers.getSetCookie().filter((c) => c.startsWith('cloakroom'));
  const cleared = setCookies.some((c) => /Max-Age=0/i.test(c));
  const live = setCookies.filter((c) => !/Max-Age=0/i.test(c)).map((c) => c.split(';')[0] as string);
  const text = await response.text();
  return {
    status: response.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    newCookie: live.length > 0 ? live.join('; ') : undefined,
    cleared,
    setCookies,
  };
}

export async function callWith(origin: string, path: string, cookie: string, init: RequestInit = {}): Promise<Answer> {
  const headers = new Headers(init.headers);
  headers.set('cookie', cookie);
  if (!headers.has('x-csrf')) headers.set('x-csrf', '1');
  if (!headers.has('sec-fetch-site')) headers.set('sec-fetch-site', 'same-origin');
  return answerOf(await fetch(new URL(path, origin), { ...init, headers, redirect: 'manual' }));
}

/** Posts to the provider's token endpoint directly, as the client (a replay, a check). */
export async function tokenEndpoint(
  issuer: string,
  clientId: string,
  clientSecret: string,
  parameters: Record<string, string>,
  path = '/token',
): Promise<{ status: number; body: { error?: string } }> {
  const credentials = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
  const response = await fetch(`${issuer}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${credentials}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(parameters),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as { error?: string }) : {} };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
