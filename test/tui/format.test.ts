import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { fit, millis, safe, safeDeep } from '../../src/tui/format.js';

/** Any C0/C1 control character: what could start (or be part of) an escape sequence. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe('millis', () => {
  it('switches to seconds where rounding reaches a second', () => {
    expect(millis(999.4)).toBe('999ms');
    expect(millis(999.6)).toBe('1.0s');
    expect(millis(4_230)).toBe('4.2s');
    expect(millis(null)).toBe('-');
  });
});

describe('fit', () => {
  it('drops control characters before cutting, so no escape sequence is printed or cut in half', () => {
    const evil = 'answered 503: \x1b]0;PWNED\x07<html>\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\r\nend';
    for (const width of [5, 12, 20, 40, 80]) {
      const out = fit(evil, width, true);
      expect(out).not.toMatch(CONTROL);
      expect(out).toHaveLength(width);
    }
    expect(fit(evil, 80)).toBe('answered 503: ]0;PWNED<html>]52;c;ZXZpbA==[2J31m end');
    expect(fit('\x1b[31mred', 4)).toBe('[31~');
  });

  it('takes a missing value (null, undefined) as "-" instead of failing', () => {
    expect(fit(null, 5, true)).toBe('-    ');
    expect(fit(undefined, 3)).toBe('-');
    expect(safe(null)).toBe('-');
  });

  it('counts wide (CJK) characters as two columns', () => {
    const host = '例え.テスト.日本';
    for (const width of [4, 5, 9, 10, 11, 20]) {
      const out = fit(host, width, true);
      expect(stringWidth(out), `${JSON.stringify(out)} at ${width}`).toBe(width);
      expect(stringWidth(fit(host, width))).toBeLessThanOrEqual(width);
    }
    expect(fit(host, 6)).toBe('例え.~');
    expect(fit('日本', 4)).toBe('日本');
    expect(fit('ascii', 3)).toBe('as~');
  });
});

describe('safeDeep', () => {
  it('cleans every string however deep, and keeps everything else', () => {
    const value = { a: '\x1b[2Jx', n: 3, z: null, list: [{ b: 'y\x07' }, 'q\x9b'], ok: true };
    expect(safeDeep(value)).toEqual({ a: '[2Jx', n: 3, z: null, list: [{ b: 'y' }, 'q'], ok: true });
  });
});
