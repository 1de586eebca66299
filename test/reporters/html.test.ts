import { describe, expect, it } from 'vitest';
import { applyBaseline } from '../../src/reporters/baseline.js';
import { renderHtml } from '../../src/reporters/html.js';
import { makeReport } from './fixture.js';

describe('renderHtml', () => {
  const html = renderHtml(makeReport());

  it('escapes everything that came from the page', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('&lt;p title=&#39;&quot;&amp;&#39;&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('Navigation timed out after 30000 ms, &quot;quoted&quot;, &lt;b&gt;');
    expect(html).toContain('https://example.com/about?a=1&amp;b=2');
    expect(html).toContain('Ensures &lt;img&gt; elements have alternate text');
  });

  it('is self-contained: inline CSS, no scripts, only help links point outside', () => {
    expect(html).toMatch(/<style>[^<]+<\/style>/);
    expect(html).not.toMatch(/\bsrc\s*=/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/@import|url\(/i);
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(hrefs).toEqual([
      'https://dequeuniversity.com/rules/axe/4.11/image-alt',
      'https://dequeuniversity.com/rules/axe/4.11/color-contrast',
      'https://dequeuniversity.com/rules/axe/4.11/region',
      'https://dequeuniversity.com/rules/axe/4.11/heading-order',
    ]);
  });

  it('never turns a non-http help URL into a link', () => {
    const report = makeReport();
    report.pages[0]!.violations[0]!.helpUrl = 'javascript:alert(1)';
    const out = renderHtml(report);
    expect(out).not.toContain('href="javascript:');
    expect(out).toContain('javascript:alert(1)');
  });

  it('is accessible itself: language, heading order, table header scope', () => {
    expect(html).toMatch(/^<!DOCTYPE html>\n<html lang="en">/);
    expect(html).toMatch(/<title>[^<]+<\/title>/);
    const levels = [...html.matchAll(/<h([1-6])\b/g)].map((m) => Number(m[1]));
    expect(levels[0]).toBe(1);
    expect(levels.filter((l) => l === 1)).toHaveLength(1);
    for (let i = 1; i < levels.length; i++) expect(levels[i]! - levels[i - 1]!).toBeLessThanOrEqual(1);
    const headers = [...html.matchAll(/<th\b[^>]*>/g)].map((m) => m[0]);
    expect(headers.length).toBeGreaterThan(0);
    for (const th of headers) expect(th).toMatch(/scope="(col|row)"/);
  });

  it('shows the summary, the page states, the error, timings and each rule with its SC', () => {
    expect(html).toContain('<th scope="row">Failing elements</th><td>9</td>');
    expect(html).toContain('<th scope="row">Elements with critical impact</th><td>2</td>');
    expect(html).toContain('<strong>NAVIGATION_TIMEOUT</strong>');
    expect(html).toContain('<td>2.00 s</td>');
    expect(html).toContain('WCAG 1.1.1');
    expect(html).toContain('<code>img.hero</code>');
    expect(html).not.toContain('New since baseline');
    expect(html).not.toContain('badge baseline-');
  });

  it('shows baseline counts, node badges and fixed findings when a baseline was applied', () => {
    const baseline = makeReport();
    baseline.pages[0]!.violations[0]!.nodes.push({
      target: ['img.gone'],
      html: '<img>',
      failureSummary: '',
      fingerprint: 'fp-gone',
    });
    const out = renderHtml(applyBaseline(makeReport(), baseline));
    expect(out).toContain('<th scope="row">Fixed since baseline</th><td>1</td>');
    expect(out).toContain('<span class="badge baseline-persisting">persisting</span>');
    expect(out).toContain('<code>img.gone</code>');
  });
});
