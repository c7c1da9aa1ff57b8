/**
 * Two real broker processes (`npm start`) with the same configuration on one shared
 * store, as a load balancer would spread them: instance A is the stack's own server,
 * B its second instance. Every request names the public origin in `Host` (what the
 * balancer forwards), whichever instance it reaches; `call` sends exactly the Cookie
 * header given (not a jar: the test picks which copy of a session cookie is sent).
 */
import type { ProductionStack } from './production-stack.ts';
import { rawRequest } from './raw-http.ts';
import { sleep } from './calls.ts';

export interface Instance {
  name: 'A' | 'B';
  /** `http://127.0.0.1:<port>` of this process. */
  origin: string;
}

export interface InstanceAnswer {
  status: number;
  body: Record<string, unknown>;
  /** The session cookie pairs this answer set (`name=value; ...`), undefined when none. */
  newCookie: string | undefined;
  /** The answer expired the session cookie. */
  cleared: boolean;
  ms: number;
}

const SESSION_COOKIE = /^cloakroom(\.\d+)?=/;

export function instanceAt(name: 'A' | 'B', port: number): Instance {
  return { name, origin: `http://127.0.0.1:${port}` };
}

export async function call(
  stack: ProductionStack,
  instance: Instance,
  path: string,
  cookie: string,
  init: { method?: string; headers?: Array<[string, string]>; timeoutMs?: number } = {},
): Promise<InstanceAnswer> {
  const started = performance.now();
  const answer = await rawRequest(instance.origin, {
    method: init.method ?? 'GET',
    path,
    headers: [
      ['host', new URL(stack.url).host],
      ['cookie', cookie],
      ['x-csrf', '1'],
      ['sec-fetch-site', 'same-origin'],
      ...(init.headers ?? []),
    ],
    body: init.method === 'POST' ? '' : undefined,
    signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
  });
  const ms = performance.now() - started;
  const setCookies = ([] as string[]).concat(answer.headers['set-cookie'] ?? []).filter((c) => SESSION_COOKIE.test(c));
  const cleared = setCookies.some((c) => /^cloakroom=/.test(c) && /Max-Age=0/i.test(c));
  const live = setCookies.filter((c) => !/Max-Age=0/i.test(c)).map((c) => c.split(';')[0] as string);
  const text = answer.body.toString('utf8');
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { text };
  }
  return { status: answer.status, body, newCookie: live.length > 0 ? live.join('; ') : undefined, cleared, ms };
}

/** Waits until the instance answers `/readyz` 200 (provider metadata loaded, store answering). */
export async function untilReady(stack: ProductionStack, instance: Instance, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await rawRequest(instance.origin, { path: '/readyz', headers: [['host', new URL(stack.url).host]] }).catch(() => undefined);
    if (answer?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`instance ${instance.name} was not ready within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * Polls `check` every 50 ms until it holds; answers how long that took (ms). Fails
 * with `what` when it does not hold within `withinMs`.
 */
export async function pollUntil(check: () => Promise<boolean>, withinMs: number, what: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > withinMs) throw new Error(`${what} did not happen within ${withinMs} ms`);
    await sleep(50);
  }
}
