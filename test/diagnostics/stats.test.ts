import { describe, expect, it } from 'vitest';
import { incompleteBeta, linearRegression, logGamma, quantileSorted, studentTCdf, studentTQuantile, summarize } from '../../src/diagnostics/stats.js';

describe('Student t distribution', () => {
  it('matches published two-sided 95% critical values', () => {
    // Standard t tables.
    const table: Array<[number, number]> = [
      [1, 12.706],
      [2, 4.303],
      [5, 2.571],
      [10, 2.228],
      [30, 2.042],
      [120, 1.98],
    ];
    for (const [df, t] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 3);
  });

  it('approaches the normal quantile for large df, is symmetric, and inverts the CDF', () => {
    expect(studentTQuantile(0.975, 1e6)).toBeCloseTo(1.95996, 4);
    expect(studentTQuantile(0.025, 7)).toBeCloseTo(-studentTQuantile(0.975, 7), 10);
    expect(studentTQuantile(0.5, 3)).toBe(0);
    for (const df of [1, 3, 12]) for (const p of [0.6, 0.9, 0.995]) expect(studentTCdf(studentTQuantile(p, df), df)).toBeCloseTo(p, 9);
  });

  it('rejects probabilities outside (0, 1)', () => {
    expect(() => studentTQuantile(1, 5)).toThrow(RangeError);
    expect(() => studentTQuantile(0, 5)).toThrow(RangeError);
    expect(() => studentTQuantile(0.9, 0)).toThrow(RangeError);
  });

  it('builds on a correct log-gamma and incomplete beta', () => {
    expect(logGamma(5)).toBeCloseTo(Math.log(24), 12);
    expect(logGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    // I_x(1, 1) = x; I_x(a, b) = 1 - I_{1-x}(b, a).
    expect(incompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(incompleteBeta(0.2, 2.5, 4)).toBeCloseTo(1 - incompleteBeta(0.8, 4, 2.5), 12);
  });
});

describe('linearRegression', () => {
  it('recovers an exact line with R² 1 and a zero-width interval', () => {
    const xs = [0, 1, 2, 3, 4, 5];
    const fit = linearRegression(
      xs,
      xs.map((x) => 1_000 + 250 * x),
    );
    expect(fit.slope).toBeCloseTo(250, 9);
    expect(fit.intercept).toBeCloseTo(1_000, 9);
    expect(fit.r2).toBeCloseTo(1, 12);
    expect(fit.slopeCi[0]).toBeCloseTo(250, 6);
    expect(fit.slopeCi[1]).toBeCloseTo(250, 6);
  });

  it('matches a hand-computed fit and interval', () => {
    // x = 1..5, y = 2, 4, 5, 4, 5: slope 0.6, intercept 2.2, SSres 2.4, Sxx 10, SE = sqrt(0.8 / 10).
    const fit = linearRegression([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
    expect(fit.slope).toBeCloseTo(0.6, 12);
    expect(fit.intercept).toBeCloseTo(2.2, 12);
    expect(fit.r2).toBeCloseTo(0.6, 12);
    const se = Math.sqrt(0.8 / 10);
    expect(fit.slopeStdErr).toBeCloseTo(se, 12);
    expect(fit.slopeCi[0]).toBeCloseTo(0.6 - 3.182446 * se, 5);
    expect(fit.slopeCi[1]).toBeCloseTo(0.6 + 3.182446 * se, 5);
  });

  it('gives an interval straddling zero for flat noise and above zero for a noisy upward trend', () => {
    const noise = [3, -1, 4, -1, -5, 9, -2, 6, -5, 3, -5, 8, -9, 7, -9, 3, 2, -3, 8, -4];
    const xs = noise.map((_, i) => i);
    const flat = linearRegression(
      xs,
      noise.map((n) => 50_000_000 + n * 100_000),
    );
    expect(flat.slopeCi[0]).toBeLessThan(0);
    expect(flat.slopeCi[1]).toBeGreaterThan(0);
    const rising = linearRegression(
      xs,
      noise.map((n, i) => 50_000_000 + i * 1_000_000 + n * 100_000),
    );
    expect(rising.slopeCi[0]).toBeGreaterThan(0);
    expect(rising.slope).toBeGreaterThan(rising.slopeCi[0]);
    expect(rising.r2).toBeGreaterThan(0.95);
  });

  it('leaves the interval unbounded with fewer than three points or no spread in x', () => {
    expect(linearRegression([1, 2], [5, 7]).slopeCi).toEqual([-Infinity, Infinity]);
    expect(linearRegression([1, 2], [5, 7]).slope).toBeCloseTo(2, 12);
    expect(linearRegression([3, 3, 3], [1, 2, 3]).slopeCi).toEqual([-Infinity, Infinity]);
    expect(linearRegression([], []).n).toBe(0);
    expect(() => linearRegression([1], [1, 2])).toThrow(RangeError);
  });
});

describe('sample summaries', () => {
  it('uses nearest-rank quantiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantileSorted(sorted, 0.95)).toBe(95);
    expect(quantileSorted(sorted, 0.5)).toBe(50);
    expect(quantileSorted([7], 0.99)).toBe(7);
    // 0.07 * 100 is 7.000000000000001 in floating point: still rank 7.
    expect([7, 14, 28, 56].map((p) => quantileSorted(sorted, p / 100))).toEqual([7, 14, 28, 56]);
    expect(quantileSorted([], 0.5)).toBeNaN();
  });

  it('summarizes unsorted values and reports nulls when empty', () => {
    expect(summarize([5, 1, 3])).toEqual({ count: 3, min: 1, max: 5, avg: 3, med: 3, p90: 5, p95: 5, p99: 5 });
    expect(summarize([])).toEqual({ count: 0, min: null, max: null, avg: null, med: null, p90: null, p95: null, p99: null });
  });
});
