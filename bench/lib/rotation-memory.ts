/**
 * Memory under real rotation: what the broker keeps per live session when every session
 * refreshes many times. A store that keeps one entry per rotation (the defect of
 * AUDIT.md H2) grows with the number of refreshes; one record per session does not.
 *
 * Measured in-process, because the running server exposes no store counters: the
 * broker's own route code (lib/, what `next start` runs) over node:http
 * (test/helpers/stack.ts), its MemoryStore inspected directly, against the development
 * provider rotating refresh tokens on every use with 4-second access tokens renewed 2 s
 * before expiry, so each session refreshes about every 2 seconds. Two equal phases of load;
 * after each: store entries and V8 heap (after a full GC) per live session, and the
 * refresh grants the provider counted.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { startDemoApi } from '../../demo/api.ts';
import { startStack } from '../../test/helpers/stack.ts';
import { progress } from './processes.ts';
import { BROWSER_API_HEADERS, inBatches, signInAtBroker } from './signin.ts';

export interface RotationMemoryFigures {
  sessions: number;
  accessTokenTtlSeconds: number;
  phaseSeconds: number;
  phases: Array<{ refreshGrants: number; requests: number; failed: number; failedStatuses: Record<string, number>; storeEntries: number; heapBytes: number; entriesPerSession: number; heapBytesPerSession: number }>;
  /** Store entries added between the phases per refresh grant made in the second (0 = bounded by sessions). */
  entriesPerRefresh: number;
}

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

export async function rotationMemory(options: { sessions: number; phaseSeconds: number }): Promise<RotationMemoryFigures> {
  const audience = 'https://rotation-api.bench.example/';
  // 4 s tokens renewed 2 s before expiry: every session used about 4 times a second
  // refreshes every 2 s, and a token is never within a loaded machine's latency of its
  // expiry when the API checks it (with 2 s tokens and 1 s of skew, the API sometimes
  // received a token that had just expired: 401 invalid_token from the API, not the broker).
  const ttl = 4;
  const stack = await startStack({
    idp: { accessTokenTtl: ttl, resources: { [audience]: { scope: 'demo:read' } }, showDemoHint: false },
  });
  const api = await startDemoApi({ port: 0, issuer: stack.idp.issuer, audience, name: 'rotation-api' });
  try {
    stack.configure({
      TOKEN_REFRESH_SKEW: '2',
      BFF_ROUTES: JSON.stringify([{ path: '/api/rot', upstream: api.url, auth: 'required', resource: audience, scopes: ['demo:read'] }]),
    });
    progress(`rotation memory: signing in ${options.sessions} sessions (${ttl} s access tokens, rotation on every use)`);
    const cookies = await inBatches(options.sessions, 10, (i) => signInAtBroker(stack.broker.url, { username: i % 2 ? 'bob' : 'alice', password: i % 2 ? 'bob-password' : 'alice-password' }, '/api/rot/items'), () => undefined);
    const jars = cookies.map((c) => new Map(c.split('; ').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)])));
    const header = (i: number) => [...jars[i]].map(([n, v]) => `${n}=${v}`).join('; ');
    const apply = (i: number, setCookies: string[]) => {
      for (const line of setCookies) {
        const [pair, ...attributes] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) jars[i].delete(name);
        else jars[i].set(name, pair.slice(eq + 1));
      }
    };

    const phases: RotationMemoryFigures['phases'] = [];
    let grantsBefore = stack.idp.stats.refreshGrants;
    for (let phase = 1; phase <= 2; phase++) {
      let requests = 0;
      let failed = 0;
      const failedStatuses: Record<string, number> = {};
      const deadline = Date.now() + options.phaseSeconds * 1000;
      // Each session is used every few hundred ms by one of 10 workers, so its token is
      // due about every 2 s: many rotations per session per phase.
      let next = 0;
      const worker = async () => {
        while (Date.now() < deadline) {
          const i = next++ % options.sessions;
          const response = await fetch(`${stack.broker.url}/api/rot/items`, { headers: { ...BROWSER_API_HEADERS, cookie: header(i) } });
          requests++;
          if (response.status !== 200) {
            failed++;
            const what = `${response.status} ${response.headers.get('content-type')?.includes('json') ? ((await response.clone().json().catch(() => ({}))) as { error?: string }).error ?? '' : ''}`.trim();
            failedStatuses[what] = (failedStatuses[what] ?? 0) + 1;
          }
          await response.arrayBuffer();
          apply(i, response.headers.getSetCookie());
        }
      };
      await Promise.all(Array.from({ length: 10 }, worker));
      collectGarbage();
      const grants = stack.idp.stats.refreshGrants - grantsBefore;
      grantsBefore = stack.idp.stats.refreshGrants;
      const storeEntries = stack.store.size;
      const heapBytes = process.memoryUsage().heapUsed;
      phases.push({ refreshGrants: grants, requests, failed, failedStatuses, storeEntries, heapBytes, entriesPerSession: storeEntries / options.sessions, heapBytesPerSession: heapBytes / options.sessions });
      progress(`rotation memory: phase ${phase}: ${requests} requests (${failed} failed${failed ? ` ${JSON.stringify(failedStatuses)}` : ''}), ${grants} refresh grants, ${storeEntries} store entries (${(storeEntries / options.sessions).toFixed(1)} per session), heap ${(heapBytes / 1048576).toFixed(1)} MB`);
    }
    const [first, second] = phases;
    return {
      sessions: options.sessions,
      accessTokenTtlSeconds: ttl,
      phaseSeconds: options.phaseSeconds,
      phases,
      entriesPerRefresh: second.refreshGrants > 0 ? (second.storeEntries - first.storeEntries) / second.refreshGrants : 0,
    };
  } finally {
    await api.close();
    await stack.close();
  }
}
