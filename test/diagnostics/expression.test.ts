import { describe, expect, it } from 'vitest';
import { ExpressionError, holds, parseThreshold } from '../../src/diagnostics/expression.js';
import { LatencyHistogram } from '../../src/diagnostics/histogram.js';
import { evaluateThresholds, thresholdProblem } from '../../src/diagnostics/thresholds.js';

describe('threshold expressions', () => {
  it('parses k6 forms', () => {
    expect(parseThreshold('p(95)<30000')).toMatchObject({ aggregation: { kind: 'p', percentile: 95 }, operator: '<', value: 30000 });
    expect(parseThreshold(' rate < 0.10 ')).toMatchObject({ aggregation: { kind: 'rate' }, operator: '<', value: 0.1 });
    expect(parseThreshold('p( 99.9 )<=1.5e3')).toMatchObject({ aggregation: { kind: 'p', percentile: 99.9 }, operator: '<=', value: 1500 });
    expect(parseThreshold('count==0')).toMatchObject({ aggregation: { kind: 'count' }, operator: '==', value: 0 });
    expect(parseThreshold('avg>=-1')).toMatchObject({ aggregation: { kind: 'avg' }, operator: '>=', value: -1 });
    for (const a of ['min', 'max', 'med', 'value']) expect(parseThreshold(`${a}>2`).aggregation.kind).toBe(a);
  });

  it('says what was expected where', () => {
    const cases: Array<[string, RegExp]> = [
      ['p95<3', /expected an aggregation.*position 1/],
      ['p(95<3', /expected "\)" at position 5/],
      ['p(0)<3', /percentile must lie in \(0, 100\]/],
      ['p(101)<3', /percentile must lie/],
      ['avg 3', /expected an operator.*position 5/],
      ['avg => 3', /expected an operator.*found "=> 3"/],
      ['avg <= x', /expected a number at position 8/],
      ['rate<0.1 ms', /expected the end of the expression at position 10/],
      ['', /expected an aggregation.*found the end/],
    ];
    for (const [source, message] of cases) {
      expect(() => parseThreshold(source), source).toThrow(ExpressionError);
      expect(() => parseThreshold(source), source).toThrow(message);
    }
  });

  it('compares, and a missing figure never holds', () => {
    expect(holds(parseThreshold('p(95)<100'), 99.9)).toBe(true);
    expect(holds(parseThreshold('p(95)<100'), 100)).toBe(false);
    expect(holds(parseThreshold('p(95)<=100'), 100)).toBe(true);
    expect(holds(parseThreshold('count>0'), 1)).toBe(true);
    expect(holds(parseThreshold('count==0'), 0)).toBe(true);
    expect(holds(parseThreshold('count<1'), null)).toBe(false);
    expect(holds(parseThreshold('max>=0'), NaN)).toBe(false);
  });

  it('refuses unknown metrics and aggregations that do not fit the metric', () => {
    expect(thresholdProblem('scan_duration', parseThreshold('p(95)<1'))).toBeNull();
    expect(thresholdProblem('http_req_failed', parseThreshold('rate<0.1'))).toBeNull();
    expect(thresholdProblem('scan_time', parseThreshold('p(95)<1'))).toMatch(/unknown metric "scan_time"/);
    expect(thresholdProblem('http_req_failed', parseThreshold('p(95)<1'))).toMatch(/p\(95\) does not apply to http_req_failed \(a rate: rate, count\)/);
    expect(thresholdProblem('recovery_drained_ms', parseThreshold('avg<1'))).toMatch(/a gauge: value, min, max/);
  });

  it('evaluates on the exact figure and reports it rounded', () => {
    const results = evaluateThresholds({ http_req_failed: [parseThreshold('rate<0.1')], scan_duration: [parseThreshold('p(95)<30000'), parseThreshold('count>0')] }, (metric) =>
      metric === 'http_req_failed' ? 0.0999999999 : null,
    );
    expect(results).toEqual([
      { metric: 'http_req_failed', expression: 'rate<0.1', actual: 0.1, passed: true },
      { metric: 'scan_duration', expression: 'p(95)<30000', actual: null, passed: false },
      { metric: 'scan_duration', expression: 'count>0', actual: null, passed: false },
    ]);
  });
});

describe('LatencyHistogram', () => {
  it('keeps every sample: percentiles within HDR precision', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1_000; i++) h.record(i);
    const s = h.summary();
    expect(s.count).toBe(1_000);
    expect(s.p50).toBeCloseTo(500, -1);
    expect(Math.abs(s.p95! - 950) / 950).toBeLessThan(0.002);
    expect(Math.abs(s.p99! - 990) / 990).toBeLessThan(0.002);
    expect(Math.abs(s.max! - 1_000) / 1_000).toBeLessThan(0.002);
    expect(s.min).toBeCloseTo(1, 1);
    expect(s.avg).toBeCloseTo(500.5, 0);
    expect(h.percentile(90)).toBeCloseTo(900, -1);
  });

  it('does not put a percentile across a threshold no sample crossed', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 99; i++) h.record(4_999);
    h.record(9_998);
    expect(h.summary().p95).toBeLessThan(5_000);
    expect(h.summary().p99).toBeLessThan(5_000);
    expect(h.summary().max).toBe(9_998);
  });

  it('is empty until a sample arrives and ignores nonsense', () => {
    const h = new LatencyHistogram();
    h.record(NaN);
    h.record(-5);
    expect(h.summary()).toEqual({ count: 0, min: null, avg: null, p50: null, p90: null, p95: null, p99: null, max: null });
    h.record(0.25);
    expect(h.summary().p50).toBeCloseTo(0.3, 1);
  });
});
