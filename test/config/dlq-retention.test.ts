import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

describe('DLQ_RETENTION', () => {
  it('refuses a bare number: it would be milliseconds, and the retention job would empty the DLQ', () => {
    expect(() => loadConfig({ DLQ_RETENTION: '30' })).toThrow(/DLQ_RETENTION="30": expected a duration with its unit/);
    expect(() => loadConfig({ DLQ_RETENTION: '0' })).toThrow(/DLQ_RETENTION="0"/);
  });

  it('refuses a retention under a minute', () => {
    expect(() => loadConfig({ DLQ_RETENTION: '0d' })).toThrow(/DLQ_RETENTION="0d": expected at least 1m/);
    expect(() => loadConfig({ DLQ_RETENTION: '30s' })).toThrow(/DLQ_RETENTION="30s": expected at least 1m/);
  });

  it('takes a duration with its unit, 30d by default', () => {
    expect(loadConfig({}).DLQ_RETENTION).toBe(30 * 86_400_000);
    expect(loadConfig({ DLQ_RETENTION: '12h' }).DLQ_RETENTION).toBe(12 * 3_600_000);
    expect(loadConfig({ DLQ_RETENTION: ' 1m ' }).DLQ_RETENTION).toBe(60_000);
  });
});
