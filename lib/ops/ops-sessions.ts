import { z } from 'zod';
import type { Config } from '../config/load.ts';
import { BrokerError } from '../errors.ts';
import { readJsonBody } from '../http/body.ts';
import { jsonResponse } from '../http/responses.ts';
import { log } from '../log.ts';
import { endIndexedSessions } from '../session/end-sessions.ts';
import { endByLogoutToken, endCreatedBefore } from '../session/revocation.ts';
import { listed, liveIndexEntries, subOfProviderSession } from '../session/session-index.ts';
import type { KeyValueStore } from '../stores/store.ts';
import { checkOpsToken } from './ops-auth.ts';

export const MAX_OPS_BODY_BYTES = 4096;
/** How far ahead of this clock `createdBefore` may lie (clock skew between the operator and the broker). */
const CREATED_BEFORE_MAX_AHEAD_SECONDS = 60;

const identifier = z.string().min(1).max(1024);
const opsRevokeBody = z.union([
  z.strictObject({ sub: identifier, iss: identifier.optional() }),
  z.strictObject({ sid: identifier }),
  z.strictObject({ createdBefore: z.number().int().positive() }),
]);

/**
 * `POST /ops/revoke` (bearer OPS_TOKEN). Every instance sees the result at its next
 * revocation check, which reads the marks written here in its one getMany:
 *  - `{"sub", "iss"?}` — every session of that user (iss defaults to OIDC_ISSUER): the
 *    back-channel logout's per-user mark, as of now;
 *  - `{"sid"}` — every session of that provider session: its per-sid mark;
 *  - `{"createdBefore"}` (unix seconds) — every session signed in before then: the global
 *    raise-only watermark (the emergency switch after a breach). A future instant is
 *    refused: it would end every sign-in until then.
 * For sub and sid, the indexed sessions are also ended one by one: records removed and
 * refresh tokens revoked at the provider (best effort). `createdBefore` spans every user
 * and the store offers no scan, so it revokes nothing at the provider: rotate the client
 * secret there for that (README).
 */
export async function handleOpsRevoke(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  checkOpsToken(request, config);
  const body = await readJsonBody(request, opsRevokeBody, MAX_OPS_BODY_BYTES);
  const now = Date.now();
  if ('createdBefore' in body) {
    if (body.createdBefore > Math.floor(now / 1000) + CREATED_BEFORE_MAX_AHEAD_SECONDS) {
      throw new BrokerError('invalid_request', { publicMessage: 'createdBefore lies in the future: it would end every new sign-in until then' });
    }
    await endCreatedBefore(store, config, body.createdBefore * 1000);
    log.security('ops_revoke', { scope: 'createdBefore', createdBefore: body.createdBefore });
    return jsonResponse({ ok: true });
  }
  const iss = ('iss' in body && body.iss) || config.oidc.issuer;
  if ('sub' in body) {
    // The mark first: it ends sessions the index does not hold (dropped over the cap, or older than it).
    await endByLogoutToken(store, config, { iss, sub: body.sub }, now);
    const entries = await liveIndexEntries(store, config, iss, body.sub, { includeEnded: true });
    const ended = await endIndexedSessions(store, config, { iss, sub: body.sub }, entries, 'operator');
    log.security('ops_revoke', { scope: 'sub', sessionCount: ended });
    return jsonResponse({ ok: true });
  }
  await endByLogoutToken(store, config, { iss, sid: body.sid }, now);
  const sub = await subOfProviderSession(store, config, iss, body.sid);
  let ended = 0;
  if (sub !== undefined) {
    // The sid mark is written: these entries now read as ended, so take them from the raw list.
    const entries = (await liveIndexEntries(store, config, iss, sub, { includeEnded: true })).filter((entry) => entry.idpSid === body.sid);
    ended = await endIndexedSessions(store, config, { iss, sub }, entries, 'operator');
  }
  log.security('ops_revoke', { scope: 'sid', sessionCount: ended });
  return jsonResponse({ ok: true });
}

/** `GET /ops/sessions?sub=...&iss=...` (bearer OPS_TOKEN): that user's live sessions, as `/auth/sessions` shows them, without `current`. */
export async function handleOpsSessions(request: Request, config: Config, store: KeyValueStore): Promise<Response> {
  checkOpsToken(request, config);
  const query = new URL(request.url).searchParams;
  const sub = query.get('sub');
  const iss = query.get('iss') || config.oidc.issuer;
  if (!sub || sub.length > 1024 || iss.length > 1024) throw new BrokerError('invalid_request', { publicMessage: 'give ?sub=<subject> (and optionally &iss=<issuer>)' });
  const entries = await liveIndexEntries(store, config, iss, sub);
  return jsonResponse({ sessions: entries.map((entry) => listed(entry)) });
}
