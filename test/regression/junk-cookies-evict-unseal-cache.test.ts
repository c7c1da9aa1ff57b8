/**
 * AUDIT.md L7: the unseal cache was FIFO over 10,000 entries and cached failures too, so
 * a loop of anonymous requests with distinct junk cookies evicted every real session's
 * entry, and every legitimate request paid the decrypt again. Failures now live in a
 * small cache of their own, and hits are evicted least recently used.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../lib/config/load.ts';
import { loadSession, newSessionId, unsealStats, writeSession } from '../../lib/session/manager.ts';
import type { Session } from '../../lib/session/session.ts';
import { MemoryStore } from '../../lib/stores/memory.ts';

const config = loadConfig({
  APP_BASE_URL: 'http://localhost:3000',
  OIDC_ISSUER: 'https://id.example.com',
  OIDC_CLIENT_ID: 'c',
  OIDC_CLIENT_SECRET: 's',
  SESSION_SECRETS: 'Jq8vN2rX5tLw0cYz3kFh7mPa9sDe4gUb6oIn1RyTqW8',
  BFF_ROUTES: '[]',
});

function requestWith(cookie: string): Request {
  return new Request('http://localhost:3000/auth/session', { headers: { cookie } });
}

test('10,001 distinct junk cookies do not evict a real session from the unseal cache', async () => {
  const store = new MemoryStore();
  try {
    const now = Date.now();
    const session: Session = {
      v: 1,
      id: newSessionId(),
      iss: 'https://id.example.com',
      sub: 'alice',
      user: { sub: 'alice' },
      refreshToken: 'rt',
      tokens: {},
      createdAt: now,
      touchedAt: now,
    };
    const [setCookie] = await writeSession(session, [], config);
    const cookie = (setCookie as string).split(';')[0] as string;
    assert.equal((await loadSession(requestWith(cookie), config, store)).session?.id, session.id);

    for (let i = 0; i < 10_001; i++) {
      const loaded = await loadSession(requestWith(`cloakroom=Fe26.2*junk-${i}`), config, store);
      assert.equal(loaded.session, undefined);
    }

    const before = unsealStats.unseals;
    assert.equal((await loadSession(requestWith(cookie), config, store)).session?.id, session.id);
    assert.equal(unsealStats.unseals - before, 0, 'the real session was still cached: no decrypt');
  } finally {
    store.close();
  }
});
