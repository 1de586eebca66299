/**
 * The `Prefer` header of a scan submission, parsed as RFC 7240 writes it: preferences split on
 * commas outside quoted strings, parameters after `;`, values a token or a quoted string.
 */
import { describe, expect, it } from 'vitest';
import { preferWait } from '../../src/http/routes/scans.js';

describe('preferWait', () => {
  it('reads wait as a token or a quoted string, with spaces around the equals sign, capped at 120', () => {
    expect(preferWait('wait=5')).toBe(5);
    expect(preferWait('wait="5"')).toBe(5);
    expect(preferWait('WAIT = 7')).toBe(7);
    expect(preferWait('respond-async, wait=10')).toBe(10);
    expect(preferWait('wait=600')).toBe(120);
    expect(preferWait(['respond-async', 'wait=3'])).toBe(3);
  });

  it('does not split a quoted value on its commas or semicolons, nor read a wait inside one', () => {
    expect(preferWait('foo="a,b", wait=5')).toBe(5);
    expect(preferWait('foo="a, wait=9", wait=5')).toBe(5);
    expect(preferWait('foo="x;wait=9"')).toBeNull();
    expect(preferWait('foo="a\\", wait=9", wait=4')).toBe(4);
    expect(preferWait('wait=5; foo="a,b"')).toBe(5);
    expect(preferWait('handling=lenient; foo="wait=8, x", wait="6"')).toBe(6);
  });

  it('takes the first wait only, and no wait from a value that is not delta-seconds', () => {
    expect(preferWait('wait=2, wait=9')).toBe(2);
    // RFC 7240: a preference given more than once counts by its first instance only.
    expect(preferWait('wait=abc, wait=5')).toBeNull();
    expect(preferWait('wait=abc')).toBeNull();
    expect(preferWait('wait=5"')).toBeNull();
    expect(preferWait('wait="5')).toBeNull();
    expect(preferWait('wait=-1')).toBeNull();
    expect(preferWait('wait')).toBeNull();
    expect(preferWait('waiting=5')).toBeNull();
    expect(preferWait('')).toBeNull();
    expect(preferWait(undefined)).toBeNull();
  });
});
