/** Pure logic: pooled random ids, and the constant-time secret matcher of the API's auth. */
import { describe, expect, it } from 'vitest';
import { randomId } from '../../src/domain/ids.js';
import { secretMatcher } from '../../src/http/plugins/auth.js';

describe('randomId', () => {
  it('gives prefixed base64url ids of the asked length, all different across several pool refills', () => {
    const ids = new Set<string>();
    // 4,096-byte pool, 12 bytes an id: 3,000 ids cross about nine refills, including partial ends.
    for (let i = 0; i < 3_000; i++) {
      const id = randomId('scan_', 12);
      expect(id).toMatch(/^scan_[A-Za-z0-9_-]{16}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(3_000);
    expect(randomId('req_', 9)).toMatch(/^req_[A-Za-z0-9_-]{12}$/);
    expect(randomId('big_', 5_000).length).toBe(4 + Math.ceil((5_000 * 4) / 3));
  });
});

describe('secretMatcher', () => {
  it('accepts each configured secret and nothing else, whatever its length or prefix', () => {
    const isKey = secretMatcher(['first-key-0123456789', 'second-key-abcdefghij']);
    expect(isKey('first-key-0123456789')).toBe(true);
    expect(isKey('second-key-abcdefghij')).toBe(true);
    for (const wrong of ['', 'first-key', 'first-key-01234567890', 'second-key-abcdefghiJ', 'x']) expect(isKey(wrong)).toBe(false);
    expect(secretMatcher([])('anything')).toBe(false);
  });
});
