import { describe, expect, it } from 'vitest';
import type { Report } from '../../src/domain/scan.js';
import { WcagaiError } from '../../src/errors/catalogue.js';
import { applyBaseline, gateCount, loadBaseline, scopeChange } from '../../src/reporters/baseline.js';
import { renderJson } from '../../src/reporters/json.js';
import { allNodes, makeReport } from './fixture.js';

/** The fixture as it was "last week": some findings gone since, one since fixed, one page unknown. */
function makeBaseline(): Report {
  const baseline = makeReport();
  const home = baseline.pages[0]!;
  // image-alt: one node still there, one not yet present last week, one fixed since.
  const imageAlt = home.violations[0]!;
  imageAlt.nodes = [imageAlt.nodes[0]!, { ...imageAlt.nodes[0]!, fingerprint: 'fp-img-old', target: ['img.old'] }];
  // color-contrast persisted entirely; region and heading-order are new.
  home.violations = [imageAlt, home.violations[1]!];
  // A page scanned last week but not now must not leak into the current report.
  baseline.pages.push({ ...structuredClone(home), url: 'https://example.com/gone' });
  // The error page had a finding last week; it failed now, so that finding is not "fixed".
  baseline.pages[2] = {
    ...baseline.pages[1]!,
    url: 'https://example.com/down',
    violations: [{ ...structuredClone(imageAlt), nodes: [{ ...imageAlt.nodes[0]!, fingerprint: 'fp-down' }] }],
  };
  return baseline;
}

describe('applyBaseline', () => {
  it('classifies current nodes as new or persisting by fingerprint and lists fixed ones', () => {
    const result = applyBaseline(makeReport(), makeBaseline());
    const status = Object.fromEntries(allNodes(result).map(({ node }) => [node.fingerprint, node.baseline]));
    expect(status).toEqual({
      'fp-img-1': 'persisting',
      'fp-img-2': 'new',
      'fp-cc-a': 'persisting',
      'fp-cc-b': 'persisting',
      'fp-cc-c': 'persisting',
      'fp-cc-d': 'persisting',
      'fp-cc-e': 'persisting',
      'fp-region': 'new',
      'fp-heading': 'new',
    });
    expect(result.pages[0]!.fixed).toEqual([{ id: 'image-alt', fingerprint: 'fp-img-old', target: ['img.old'] }]);
    expect(result.pages[1]!.fixed).toEqual([]);
    expect(result.pages[2]!.fixed).toEqual([]);
    expect(result.pages.map((p) => p.url)).not.toContain('https://example.com/gone');
    expect(result.summary.baseline).toEqual({ new: 3, persisting: 6, fixed: 1 });
  });

  it('calls nothing fixed of a rule that did not run this time (--rules, --disable-rules, another level)', () => {
    const report = makeReport();
    // image-alt did not run: its baseline finding fp-img-old says nothing about today.
    report.pages[0]!.rules.ran = report.pages[0]!.rules.ran.filter((id) => id !== 'image-alt');
    report.pages[0]!.violations = report.pages[0]!.violations.filter((v) => v.id !== 'image-alt');
    const result = applyBaseline(report, makeBaseline());
    expect(result.pages[0]!.fixed).toEqual([]);
    expect(result.summary.baseline?.fixed).toBe(0);
  });

  it('calls nothing fixed when another part of the page was scanned (--include, --exclude, --viewport changed)', () => {
    const changes: Array<Partial<Report['options']>> = [{ exclude: ['img.old'] }, { include: ['main'] }, { viewport: { width: 375, height: 667 } }];
    for (const change of changes) {
      const report = makeReport();
      report.options = { ...report.options, ...change };
      const result = applyBaseline(report, makeBaseline());
      expect(result.pages[0]!.fixed, JSON.stringify(change)).toEqual([]);
      expect(result.summary.baseline?.fixed, JSON.stringify(change)).toBe(0);
    }
    // The same scope, written in another order or spelled out as the default window, still compares.
    const baseline = makeBaseline();
    baseline.options = { ...baseline.options, exclude: ['.ad', '.promo'] };
    const report = makeReport();
    report.options = { ...report.options, exclude: ['.promo', '.ad'], viewport: { width: 1280, height: 1024 } };
    expect(applyBaseline(report, baseline).pages[0]!.fixed).toEqual([{ id: 'image-alt', fingerprint: 'fp-img-old', target: ['img.old'] }]);
  });

  it('scopeChange names what differs between the parts of the page two scans checked, "" when nothing', () => {
    expect(scopeChange({ exclude: ['.promo', '.ad'], viewport: { width: 1280, height: 1024 } }, { exclude: ['.ad', '.promo'] })).toBe('');
    expect(scopeChange(undefined, undefined)).toBe('');
    expect(scopeChange({ viewport: { width: 375, height: 667 } }, undefined)).toBe('viewport 1280x1024 there, 375x667 now');
    expect(scopeChange({ include: ['main'] }, { include: ['main', '#nav'], exclude: ['.ad'] })).toBe('--include "#nav", "main" there, "main" now; --exclude ".ad" there, none now');
  });

  it('treats every node of a page missing from the baseline as new', () => {
    const baseline = makeBaseline();
    baseline.pages = baseline.pages.filter((p) => p.url !== 'https://example.com/');
    const result = applyBaseline(makeReport(), baseline);
    expect(allNodes(result).every(({ node }) => node.baseline === 'new')).toBe(true);
    expect(result.summary.baseline).toEqual({ new: 9, persisting: 0, fixed: 0 });
  });

  it('marks the findings of a page that failed in the baseline not comparable, not new', () => {
    const baseline = makeBaseline();
    // Last week the home page timed out: the baseline knows nothing of its findings.
    baseline.pages[0] = { ...baseline.pages[0]!, status: 'error', error: { code: 'NAVIGATION_TIMEOUT', message: 'timed out', retryable: true }, violations: [], rules: { axeVersion: '4.11.4', tags: [], ran: [] } };
    const result = applyBaseline(makeReport(), baseline);
    const home = allNodes(result).filter(({ url }) => url === 'https://example.com/');
    expect(home.length).toBe(9);
    expect(home.every(({ node }) => node.baseline === 'not-comparable')).toBe(true);
    expect(result.pages[0]!.fixed).toEqual([]);
    expect(result.summary.baseline).toEqual({ new: 0, persisting: 0, fixed: 0, notComparable: 9 });
    // The gate has nothing to compare them with, so it does not take them as old: it counts them
    // as it would without a baseline (fail closed), and the report says why.
    expect(gateCount(result, 'minor', true)).toBe(9);
    expect(gateCount(result, 'critical', true)).toBe(2);
  });

  it('marks findings of a rule that did not run on the baseline page not comparable', () => {
    const baseline = makeBaseline();
    // The baseline ran without region and heading-order (another level, --rules).
    baseline.pages[0]!.rules.ran = baseline.pages[0]!.rules.ran.filter((id) => id !== 'region' && id !== 'heading-order');
    const result = applyBaseline(makeReport(), baseline);
    const status = Object.fromEntries(allNodes(result).map(({ node }) => [node.fingerprint, node.baseline]));
    expect(status).toMatchObject({ 'fp-img-2': 'new', 'fp-region': 'not-comparable', 'fp-heading': 'not-comparable' });
    expect(result.summary.baseline).toEqual({ new: 1, persisting: 6, fixed: 1, notComparable: 2 });
    // A baseline written without the rules manifest compares every rule, as before.
    delete (baseline.pages[0] as Partial<typeof baseline.pages[0]>).rules;
    expect(applyBaseline(makeReport(), baseline).summary.baseline).toEqual({ new: 3, persisting: 6, fixed: 1 });
  });

  it('leaves its inputs untouched', () => {
    const report = makeReport();
    const before = structuredClone(report);
    applyBaseline(report, makeBaseline());
    expect(report).toEqual(before);
  });
});

describe('gateCount', () => {
  it('counts nodes at or above the threshold without a baseline', () => {
    const report = makeReport();
    expect(gateCount(report, 'critical', false)).toBe(2);
    expect(gateCount(report, 'serious', false)).toBe(7);
    expect(gateCount(report, 'moderate', false)).toBe(8);
    expect(gateCount(report, 'minor', false)).toBe(9);
  });

  it('counts only new nodes once a baseline was applied', () => {
    const result = applyBaseline(makeReport(), makeBaseline());
    // New: fp-img-2 (critical), fp-region (moderate), fp-heading (minor).
    expect(gateCount(result, 'critical', true)).toBe(1);
    expect(gateCount(result, 'serious', true)).toBe(1);
    expect(gateCount(result, 'moderate', true)).toBe(2);
    expect(gateCount(result, 'minor', true)).toBe(3);
    expect(gateCount(result, 'minor', false)).toBe(9);
  });
});

describe('loadBaseline', () => {
  it('reads back a JSON report', () => {
    const report = makeReport();
    expect(loadBaseline(renderJson(report), 'base.json')).toEqual(report);
    expect(loadBaseline(`\uFEFF${renderJson(report)}`, 'base.json').pages).toHaveLength(3);
  });

  const junk: Array<[string, string, RegExp]> = [
    ['not JSON', 'hello', /\(invalid JSON: /],
    ['empty file', '', /\(invalid JSON: /],
    ['array', '[]', /\(expected object, got array\)/],
    ['SARIF log', '{"version":"2.1.0","runs":[]}', /\(tool is missing \(expected object\)\)/],
    ['no pages', '{"tool":{"name":"wcagai","version":"1"}}', /\(pages is missing/],
    ['bad url', '{"tool":{"name":"wcagai","version":"1"},"pages":[{"url":1,"violations":[]}]}', /\(pages\[0\]\.url: expected string, got number\)/],
    [
      'node without fingerprint',
      '{"tool":{"name":"wcagai","version":"1"},"pages":[{"url":"u","violations":[{"id":"r","nodes":[{"target":[]}]}]}]}',
      /\(pages\[0\]\.violations\[0\]\.nodes\[0\]\.fingerprint is missing \(expected string\)\)/,
    ],
  ];

  it.each(junk)('rejects %s with a USAGE error naming the source', (_name, text, detail) => {
    let caught: unknown;
    try {
      loadBaseline(text, 'base.json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(WcagaiError);
    const error = caught as WcagaiError;
    expect(error.code).toBe('USAGE');
    expect(error.message).toMatch(/^base\.json: not a wcagai JSON report \(.+\)$/);
    expect(error.message).toMatch(detail);
  });
});
