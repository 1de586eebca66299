import { describe, expect, it } from 'vitest';
import { renderPretty } from '../../src/reporters/pretty.js';
import { makeReport } from './fixture.js';

const ANSI = /\u001b\[/;

describe('renderPretty', () => {
  it('writes no ANSI escapes when colour is off', () => {
    const out = renderPretty(makeReport(), { color: false });
    expect(out).not.toMatch(ANSI);
    expect(out).toContain('https://example.com/  4 violations, 9 elements');
    expect(out).toContain('critical image-alt: Images must have alternative text  [WCAG 1.1.1]');
    expect(out).toContain('https://example.com/about?a=1&b=2  no violations');
    expect(out).toContain('https://example.com/down  error NAVIGATION_TIMEOUT: Navigation timed out');
  });

  it('lists the first targets, then how many more', () => {
    const out = renderPretty(makeReport(), { color: false });
    expect(out).toContain('      .c-c\n      … and 2 more\n');
    expect(out).not.toContain('.c-d');
  });

  it('orders violations by severity and ends with a summary line', () => {
    const report = makeReport();
    report.pages[0]!.violations.reverse();
    const lines = renderPretty(report, { color: false }).trimEnd().split('\n');
    const impacts = lines.filter((l) => /^ {2}\S/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
    expect(impacts).toEqual(['critical', 'serious', 'moderate', 'minor']);
    expect(lines.at(-1)).toBe('3 pages (1 failed) · 4 violations · 9 elements (2 critical, 5 serious, 1 moderate, 1 minor)');
  });

  it('colours impacts when colour is on', () => {
    const out = renderPretty(makeReport(), { color: true });
    expect(out).toContain('\u001b[1;31mcritical');
    expect(out).toContain('\u001b[33mmoderate');
  });

  it('strips terminal control sequences coming from the page', () => {
    const report = makeReport();
    report.pages[0]!.violations[0]!.help = 'evil\u001b]0;pwned\u0007 title\nnext';
    report.pages[0]!.violations[0]!.nodes[0]!.target = ['img\u001b[2J'];
    const out = renderPretty(report, { color: false });
    expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(out).toContain('evil]0;pwned title next');
  });

  it('shows baseline status and counts', () => {
    const report = makeReport();
    report.pages[0]!.violations[0]!.nodes[0]!.baseline = 'new';
    report.pages[0]!.fixed = [{ id: 'x', fingerprint: 'f', target: ['a'] }];
    report.summary.baseline = { new: 1, persisting: 0, fixed: 1 };
    const out = renderPretty(report, { color: false });
    expect(out).toContain('img.hero (new)');
    expect(out).toContain('1 fixed since baseline');
    expect(out).toContain('baseline: 1 new, 0 persisting, 1 fixed');
  });

  it('says which findings the baseline could not compare, and why', () => {
    const report = makeReport();
    report.pages[0]!.violations[0]!.nodes[0]!.baseline = 'not-comparable';
    report.summary.baseline = { new: 0, persisting: 0, fixed: 0, notComparable: 1 };
    const out = renderPretty(report, { color: false });
    expect(out).toContain('img.hero (not comparable)');
    expect(out).toContain('baseline: 0 new, 0 persisting, 0 fixed, 1 not comparable (page failed or rule not run in the baseline)');
  });

  it('says what was fixed on a page that is clean now', () => {
    const report = makeReport();
    report.pages[0]!.violations = [];
    report.pages[0]!.fixed = [
      { id: 'x', fingerprint: 'f', target: ['a'] },
      { id: 'y', fingerprint: 'g', target: ['b'] },
    ];
    const out = renderPretty(report, { color: false });
    expect(out).toMatch(/^https:\/\/example\.com\/ {2}no violations\n {2}2 fixed since baseline$/m);
  });
});
