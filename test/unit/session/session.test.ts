import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sessionExpiresAt, touchIntervalMs, userFromClaims, type Session } from '../../../lib/session/session.ts';

function session(createdAt: number, touchedAt: number): Session {
  return { v: 1, id: 'id', iss: 'https://id.example.com', sub: 'alice', user: { sub: 'alice' }, tokens: {}, createdAt, touchedAt };
}

describe('sessionExpiresAt', () => {
  const lifetimes = { idleTimeout: 3600, absoluteTimeout: 86_400 };
  const t0 = 1_700_000_000_000;

  it('is the idle deadline while it comes first', () => {
    assert.equal(sessionExpiresAt(session(t0, t0), lifetimes), t0 + 3_600_000);
    assert.equal(sessionExpiresAt(session(t0, t0 + 60_000), lifetimes), t0 + 60_000 + 3_600_000);
  });

  it('is the absolute deadline once activity would carry past it', () => {
    assert.equal(sessionExpiresAt(session(t0, t0 + 86_000_000), lifetimes), t0 + 86_400_000);
  });

  it('is either when they coincide', () => {
    assert.equal(sessionExpiresAt(session(t0, t0 + 82_800_000), lifetimes), t0 + 86_400_000);
  });
});

describe('touchIntervalMs', () => {
  it('is a tenth of the idle timeout', () => {
    assert.equal(touchIntervalMs({ idleTimeout: 300, absoluteTimeout: 3600 }), 30_000);
    assert.equal(touchIntervalMs({ idleTimeout: 100, absoluteTimeout: 3600 }), 10_000);
    assert.equal(touchIntervalMs({ idleTimeout: 15, absoluteTimeout: 3600 }), 1_000);
  });

  it('is at most a minute', () => {
    assert.equal(touchIntervalMs({ idleTimeout: 600, absoluteTimeout: 3600 }), 60_000);
    assert.equal(touchIntervalMs({ idleTimeout: 86_400, absoluteTimeout: 604_800 }), 60_000);
  });

  it('is at least a second', () => {
    assert.equal(touchIntervalMs({ idleTimeout: 9, absoluteTimeout: 3600 }), 1_000);
    assert.equal(touchIntervalMs({ idleTimeout: 1, absoluteTimeout: 3600 }), 1_000);
  });
});

describe('userFromClaims', () => {
  it('keeps sub, name and email only', () => {
    const claims = {
      sub: 'alice',
      name: 'Alice Example',
      email: 'alice@example.com',
      email_verified: true,
      groups: ['admins', 'staff'],
      roles: ['admin'],
      sid: 'provider-session',
      nonce: 'n',
      at_hash: 'h',
      iss: 'https://id.example.com',
      aud: 'cloakroom',
      access_token: 'secret-access-token',
      refresh_token: 'secret-refresh-token',
      id_token: 'secret-id-token',
      phone_number: '+1 555 0100',
    };
    assert.deepEqual(userFromClaims(claims), { sub: 'alice', name: 'Alice Example', email: 'alice@example.com' });
  });

  it('omits name and email that are missing or not strings', () => {
    const user = userFromClaims({ sub: 'bob', name: { first: 'Bob' }, email: ['bob@example.com'] });
    assert.deepEqual(user, { sub: 'bob' });
    assert.deepEqual(Object.keys(user), ['sub']);
  });

  it('makes sub a string', () => {
    assert.deepEqual(userFromClaims({ sub: 42 }), { sub: '42' });
  });
});
