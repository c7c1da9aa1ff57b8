/**
 * The back-channel endpoint's body cap (AUDIT H1) in front of the provider: everything an
 * anonymous caller controls is refused before the broker contacts the provider. The
 * configured issuer here is a port where nothing listens, so a handler that called the
 * provider first would answer 503 idp_unavailable instead of 400.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type Config } from '../../../lib/config/load.ts';
import { handleBackchannelLogout, MAX_BACKCHANNEL_BODY_BYTES } from '../../../lib/oidc/backchannel.ts';
import { resetProviderForTests } from '../../../lib/oidc/provider.ts';
import { MemoryStore } from '../../../lib/stores/memory.ts';

/** A port that was free a moment ago: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function stream(bytes: number, chunk = 4096): ReadableStream<Uint8Array> {
  let left = bytes;
  return new ReadableStream({
    pull(controller) {
      if (left <= 0) return controller.close();
      const size = Math.min(chunk, left);
      left -= size;
      controller.enqueue(new Uint8Array(size).fill(0x61));
    },
  });
}

describe('back-channel logout: the body is refused before the provider is called', () => {
  let config: Config;
  const store = new MemoryStore();

  before(async () => {
    resetProviderForTests();
    config = loadConfig({
      APP_BASE_URL: 'http://localhost:3000',
      OIDC_ISSUER: `http://127.0.0.1:${await closedPort()}`,
      OIDC_ALLOW_INSECURE_HTTP: 'true',
      OIDC_CLIENT_ID: 'cloakroom',
      OIDC_CLIENT_SECRET: 'a-client-secret',
      SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
      BFF_ROUTES: '[]',
    });
  });
  after(() => store.close());

  const post = (body: BodyInit, headers: Record<string, string> = {}) =>
    handleBackchannelLogout(
      new Request('http://localhost:3000/auth/backchannel-logout', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
        // @ts-expect-error Node's fetch needs duplex for a streamed request body.
        duplex: 'half',
      }),
      config,
      store,
    );

  test('a Content-Length above the cap: 400, without reading the body', async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (++pulled > 64) controller.close();
        else controller.enqueue(new Uint8Array(1024));
      },
    });
    const response = await post(body, { 'content-length': String(MAX_BACKCHANNEL_BODY_BYTES + 1) });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), { error: 'invalid_request', message: `the body exceeds ${MAX_BACKCHANNEL_BODY_BYTES} bytes` });
    assert.ok(pulled <= 1, `the body was not read (${pulled} pulls)`);
  });

  test('a body without a length that passes the cap: 400 once past it', async () => {
    const response = await post(stream(MAX_BACKCHANNEL_BODY_BYTES + 4096));
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
  });

  test('a body exactly at the cap is read, and only then is the provider called', async () => {
    const pad = 'x'.repeat(MAX_BACKCHANNEL_BODY_BYTES - 'logout_token=t&pad='.length);
    const response = await post(stream(0), {});
    assert.equal(response.status, 400, 'no token: refused before the provider');
    const atCap = await post(`logout_token=t&pad=${pad}`);
    assert.equal(atCap.status, 503, 'a well-formed form reaches the (unreachable) provider');
    assert.equal(((await atCap.json()) as { error: string }).error, 'idp_unavailable');
  });
});
