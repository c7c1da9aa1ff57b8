import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCookies, serializeCookie } from '../../../lib/http/cookies.ts';

describe('parseCookies', () => {
  it('reads name=value pairs', () => {
    assert.deepEqual([...parseCookies('a=1; b=2')], [['a', '1'], ['b', '2']]);
  });

  it('keeps the first occurrence of a name', () => {
    assert.deepEqual([...parseCookies('a=first; b=2; a=second')], [['a', 'first'], ['b', '2']]);
  });

  it('trims spaces around names and values, with or without a space after ;', () => {
    assert.deepEqual([...parseCookies('  a = 1 ;b=2;   c=3  ')], [['a', '1'], ['b', '2'], ['c', '3']]);
  });

  it('keeps = inside a value', () => {
    assert.deepEqual([...parseCookies('a=b=c==; d==')], [['a', 'b=c=='], ['d', '=']]);
  });

  it('keeps an iron seal intact', () => {
    const sealed = 'Fe26.2*1*abc*def-_*ghi*1700000000000*jkl*mno~2';
    assert.equal(parseCookies(`cloakroom=${sealed}`).get('cloakroom'), sealed);
  });

  it('an empty or missing header is no cookie', () => {
    assert.equal(parseCookies('').size, 0);
    assert.equal(parseCookies(null).size, 0);
    assert.equal(parseCookies(';;  ; ').size, 0);
  });

  it('skips parts without = or without a name, and keeps empty values', () => {
    assert.deepEqual([...parseCookies('flag; =orphan; a=; b=2')], [['a', ''], ['b', '2']]);
  });
});

describe('serializeCookie', () => {
  it('writes every attribute, in order, for an expiring cookie', () => {
    assert.equal(
      serializeCookie('cloakroom', '', { path: '/', maxAge: 0, httpOnly: true, secure: true, sameSite: 'strict' }),
      'cloakroom=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Strict',
    );
  });

  it('writes Max-Age without Expires for a live cookie, and SameSite=Lax', () => {
    assert.equal(
      serializeCookie('cloakroom-tx.abc', 'v', { maxAge: 600, httpOnly: true, sameSite: 'lax' }),
      'cloakroom-tx.abc=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax',
    );
  });

  it('defaults to Path=/ and nothing else (a session cookie)', () => {
    assert.equal(serializeCookie('a', 'b', {}), 'a=b; Path=/');
  });

  it('writes a whole number of seconds', () => {
    assert.equal(serializeCookie('a', 'b', { maxAge: 59.9 }), 'a=b; Path=/; Max-Age=59');
  });

  it('never writes a Domain (host-only cookies)', () => {
    assert.doesNotMatch(serializeCookie('__Host-cloakroom', 'v', { secure: true, httpOnly: true, sameSite: 'strict', maxAge: 1 }), /Domain/i);
  });

  it('accepts every character of an iron seal', () => {
    const sealed = 'Fe26.2*1*abc*def-_*ghi*1700000000000*jkl*mno~2';
    assert.equal(serializeCookie('__Host-cloakroom.0', sealed, {}), `__Host-cloakroom.0=${sealed}; Path=/`);
  });

  it('refuses a name that could inject attributes or break the header', () => {
    for (const name of ['a;b', 'a; Domain=evil.com', 'a=b', 'a b', 'a\r\nSet-Cookie: x=y', 'a\n', '', 'a,b', '"a"', 'a\tb', 'ä']) {
      assert.throws(() => serializeCookie(name, 'v', {}), TypeError, JSON.stringify(name));
    }
  });

  it('refuses a value that could inject attributes or break the header', () => {
    for (const value of ['a;b', 'a; Domain=evil.com', 'a b', ' a', 'a\r\nSet-Cookie: x=y', 'a\n', 'a\r', 'a,b', 'a"b', 'a\\b', 'a\tb', 'ä', '\u0000']) {
      assert.throws(() => serializeCookie('a', value, {}), { name: 'TypeError', message: 'invalid cookie value' }, JSON.stringify(value));
    }
  });

  it('round-trips through parseCookies', () => {
    const header = serializeCookie('a', 'x=y', { maxAge: 10, httpOnly: true });
    assert.equal(parseCookies(header.slice(0, header.indexOf(';'))).get('a'), 'x=y');
  });
});
