import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isSafeReturnTo, safeReturnTo } from '../../../lib/security/return-to.ts';

type Payloads = { unsafe: string[]; unsafeNonStrings: unknown[]; safe: string[] };
const payloads = JSON.parse(
  readFileSync(new URL('../../fixtures/return-to-payloads.json', import.meta.url), 'utf8'),
) as Payloads;

/** JSON.stringify shows tabs, newlines and U+2028 in the test name instead of breaking it. */
const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

describe('isSafeReturnTo: open-redirect payloads are refused', () => {
  it('the fixture is large enough to mean something', () => {
    assert.ok(payloads.unsafe.length >= 50);
    assert.ok(payloads.safe.length >= 4);
  });

  for (const payload of payloads.unsafe) {
    it(`refuses ${show(payload)}`, () => {
      assert.equal(isSafeReturnTo(payload), false);
      assert.equal(safeReturnTo(payload), '/');
    });
  }

  for (const payload of payloads.unsafeNonStrings) {
    it(`refuses the non-string ${show(payload)}`, () => {
      assert.equal(isSafeReturnTo(payload), false);
      assert.equal(safeReturnTo(payload), '/');
    });
  }

  it('refuses undefined, a symbol, a String object and a function', () => {
    for (const value of [undefined, Symbol('/'), new String('/dashboard'), () => '/']) {
      assert.equal(isSafeReturnTo(value), false);
      assert.equal(safeReturnTo(value), '/');
    }
  });
});

describe('isSafeReturnTo: same-origin paths are kept', () => {
  for (const payload of payloads.safe) {
    it(`keeps ${show(payload)}`, () => {
      assert.equal(isSafeReturnTo(payload), true);
      assert.equal(safeReturnTo(payload), payload);
    });
  }

  it('decides that /@evil.com is a path on this origin, not userinfo', () => {
    // Userinfo only exists in an authority, which only starts after '//' (RFC 3986 §3.2).
    assert.equal(new URL('/@evil.com', 'https://app.example.com').origin, 'https://app.example.com');
    assert.equal(safeReturnTo('/@evil.com'), '/@evil.com');
  });
});

describe('isSafeReturnTo: length limit', () => {
  it('keeps a path of exactly 2048 characters', () => {
    const value = '/' + 'a'.repeat(2047);
    assert.equal(value.length, 2048);
    assert.equal(safeReturnTo(value), value);
  });

  it('refuses a path of 2049 characters and a very long one', () => {
    assert.equal(safeReturnTo('/' + 'a'.repeat(2048)), '/');
    assert.equal(safeReturnTo('/' + 'a/'.repeat(500_000)), '/');
  });
});

describe('isSafeReturnTo: decoding depth', () => {
  it('refuses a value that still decodes to something new after three passes', () => {
    // '%25252525' decodes four times; nobody encodes a real path that deep.
    assert.equal(safeReturnTo('/a%2525252541'), '/');
  });

  it('keeps a value whose encoded percent decodes to a literal percent', () => {
    assert.equal(safeReturnTo('/discount/100%25'), '/discount/100%25');
  });

  it('refuses every encoded-slash spelling that decodes to //, up to three decodings deep', () => {
    for (const slash of ['%2F', '%252F', '%25252F']) {
      assert.equal(safeReturnTo(`/${slash}evil.com`), '/', slash);
    }
  });
});

describe('safeReturnTo is the redirect target the browser will follow', () => {
  it('resolves every kept value to the same origin', () => {
    for (const payload of payloads.safe) {
      const target = new URL(safeReturnTo(payload), 'https://app.example.com');
      assert.equal(target.origin, 'https://app.example.com', payload);
    }
  });

  it('refused values resolve to the root of the same origin', () => {
    for (const payload of payloads.unsafe) {
      assert.equal(new URL(safeReturnTo(payload), 'https://app.example.com').href, 'https://app.example.com/');
    }
  });
});
