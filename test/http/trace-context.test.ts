import { describe, expect, it } from 'vitest';
import { traceIdFrom } from '../../src/http/plugins/request-id.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('traceparent (W3C Trace Context)', () => {
  it('takes the trace id of a valid version 00 header', () => {
    expect(traceIdFrom(`00-${TRACE}-${PARENT}-01`)).toBe(TRACE);
    expect(traceIdFrom(`00-${TRACE}-${PARENT}-00`)).toBe(TRACE);
    expect(traceIdFrom([`00-${TRACE}-${PARENT}-01`, 'ignored'])).toBe(TRACE);
  });

  it('ignores version ff, an all-zero trace or parent id, upper-case hex, and extra fields on version 00', () => {
    for (const header of [
      `ff-${TRACE}-${PARENT}-01`,
      `00-${'0'.repeat(32)}-${PARENT}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`,
      `00-${TRACE}-${PARENT.toUpperCase()}-01`,
      `0A-${TRACE}-${PARENT}-01`,
      `00-${TRACE}-${PARENT}-01-extra`,
      `00-${TRACE}-zzzz-01`,
      'garbage',
      '',
      undefined,
    ]) {
      expect(traceIdFrom(header), String(header)).toBeUndefined();
    }
  });

  it('reads a later version by its first four fields, whatever follows them', () => {
    expect(traceIdFrom(`01-${TRACE}-${PARENT}-01`)).toBe(TRACE);
    expect(traceIdFrom(`cc-${TRACE}-${PARENT}-01-what-the-future-adds`)).toBe(TRACE);
    // The fields themselves must still be valid, and end where the next one starts.
    expect(traceIdFrom(`cc-${TRACE}-${PARENT}-01what`)).toBeUndefined();
    expect(traceIdFrom(`cc-${'0'.repeat(32)}-${PARENT}-01-x`)).toBeUndefined();
  });
});
