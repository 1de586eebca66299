import { describe, expect, it } from 'vitest';
import { breakerStateAt, mergeBreakers } from '../../src/domain/snapshot.js';

describe('mergeBreakers', () => {
  const now = Date.parse('2026-11-30T12:00:00.000Z');
  const ago = (ms: number) => new Date(now - ms).toISOString();

  it("shows a process's OPEN breaker HALF_OPEN once its half-open duration has passed since it opened (its heartbeat may be older, or its version report OPEN until a call)", () => {
    const rows = mergeBreakers(
      [
        { process: 'w1', breakers: { ai: { state: 'OPEN', failures: 5, openedAt: ago(45_000), halfOpenAfterMs: 30_000 }, hubspot: { state: 'OPEN', failures: 5, openedAt: ago(10_000), halfOpenAfterMs: 30_000 } } },
        { process: 'w2', breakers: { ai: { state: 'HALF_OPEN', failures: 5, openedAt: ago(40_000), halfOpenAfterMs: 30_000 }, hubspot: { state: 'ISOLATED', failures: 0, openedAt: ago(60_000), halfOpenAfterMs: 30_000 } } },
      ],
      now,
    );
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(byName.ai).toMatchObject({ state: 'HALF_OPEN', uniform: true, processes: [{ process: 'w1', state: 'HALF_OPEN' }, { process: 'w2', state: 'HALF_OPEN' }] });
    expect(byName.hubspot).toMatchObject({ state: 'ISOLATED', uniform: false, processes: [{ process: 'w1', state: 'OPEN' }, { process: 'w2', state: 'ISOLATED' }] });
  });

  it('leaves a breaker whose heartbeat does not give its half-open duration as reported', () => {
    expect(mergeBreakers([{ process: 'w1', breakers: { ai: { state: 'OPEN', openedAt: ago(3_600_000) } } }], now)[0]).toMatchObject({ state: 'OPEN' });
    expect(breakerStateAt({ state: 'OPEN', openedAt: 'not a date', halfOpenAfterMs: 1 }, now)).toBe('OPEN');
    expect(breakerStateAt({ state: 'CLOSED', openedAt: null, halfOpenAfterMs: 1 }, now)).toBe('CLOSED');
  });
});
