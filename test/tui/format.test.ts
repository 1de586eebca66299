import { describe, expect, it } from 'vitest';
import { millis } from '../../src/tui/format.js';

describe('millis', () => {
  it('switches to seconds where rounding reaches a second', () => {
    expect(millis(999.4)).toBe('999ms');
    expect(millis(999.6)).toBe('1.0s');
    expect(millis(4_230)).toBe('4.2s');
    expect(millis(null)).toBe('-');
  });
});
