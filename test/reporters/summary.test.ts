import { describe, expect, it } from 'vitest';
import { summarize } from '../../src/reporters/summary.js';
import { makeReport } from './fixture.js';

describe('summarize', () => {
  it('counts pages, failed pages, violated rules, nodes and nodes by impact', () => {
    const summary = summarize(makeReport().pages);
    expect(summary).toEqual({
      pages: 3,
      pagesFailed: 1,
      violations: 4,
      nodes: 9,
      byImpact: { critical: 2, serious: 5, moderate: 1, minor: 1 },
    });
  });

  it('lists all four impacts at zero for a clean scan', () => {
    expect(summarize([])).toEqual({
      pages: 0,
      pagesFailed: 0,
      violations: 0,
      nodes: 0,
      byImpact: { critical: 0, serious: 0, moderate: 0, minor: 0 },
    });
  });

  it('counts an unknown impact as minor', () => {
    const report = makeReport();
    report.pages[0]!.violations[0]!.impact = null;
    expect(summarize(report.pages).byImpact).toEqual({ critical: 0, serious: 5, moderate: 1, minor: 3 });
  });

  it('adds baseline counts when nodes carry a status or pages list fixed findings', () => {
    const report = makeReport();
    const [first, second] = report.pages[0]!.violations[0]!.nodes;
    first!.baseline = 'new';
    second!.baseline = 'persisting';
    report.pages[1]!.fixed = [{ id: 'image-alt', fingerprint: 'old', target: ['img'] }];
    expect(summarize(report.pages).baseline).toEqual({ new: 1, persisting: 1, fixed: 1 });

    const onlyFixed = makeReport();
    onlyFixed.pages[1]!.fixed = [];
    expect(summarize(onlyFixed.pages).baseline).toEqual({ new: 0, persisting: 0, fixed: 0 });
  });
});
