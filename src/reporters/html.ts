import type { Impact, PageResult, Report, ReportSummary, Violation, ViolationNode } from '../domain/scan.js';
import { IMPACTS } from '../domain/scan.js';
import { targetText } from './summary.js';

/** One self-contained, accessible HTML page (inline CSS, no scripts, no external assets). */
export function renderHtml(report: Report): string {
  const title = `Accessibility report: ${plural(report.pages.length, 'page')}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="${esc(`${report.tool.name} ${report.tool.version}`)}">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${esc(title)}</h1>
<p>${esc(report.tool.name)} ${esc(report.tool.version)}, axe-core ${esc(report.axeVersion)},
WCAG ${esc(report.options.wcagVersion)} level ${esc(report.options.wcagLevel)}.
Started <time datetime="${esc(report.startedAt)}">${esc(report.startedAt)}</time>,
finished <time datetime="${esc(report.finishedAt)}">${esc(report.finishedAt)}</time>.</p>
</header>
<main>
${renderSummary(report.summary)}
<section aria-labelledby="pages-heading">
<h2 id="pages-heading">Pages</h2>
${report.pages.map(renderPage).join('\n')}
</section>
</main>
</body>
</html>
`;
}

function renderSummary(s: ReportSummary): string {
  const rows: Array<[string, number]> = [
    ['Pages', s.pages],
    ['Pages that could not be scanned', s.pagesFailed],
    ['Violated rules (summed over pages)', s.violations],
    ['Failing elements', s.nodes],
    ...[...IMPACTS].reverse().map((i): [string, number] => [`Elements with ${i} impact`, s.byImpact[i]]),
  ];
  if (s.baseline) {
    rows.push(
      ['New since baseline', s.baseline.new],
      ['Persisting from baseline', s.baseline.persisting],
      ['Fixed since baseline', s.baseline.fixed],
    );
    if (s.baseline.notComparable) rows.push(['Not comparable (page failed or rule not run in the baseline)', s.baseline.notComparable]);
  }
  const body = rows.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${v}</td></tr>`).join('\n');
  return `<section aria-labelledby="summary-heading">
<h2 id="summary-heading">Summary</h2>
<table class="summary">
<caption>Totals for this scan</caption>
<thead><tr><th scope="col">Measure</th><th scope="col">Count</th></tr></thead>
<tbody>
${body}
</tbody>
</table>
</section>`;
}

function renderPage(page: PageResult, index: number): string {
  const id = `page-${index + 1}`;
  const nodes = page.violations.reduce((n, v) => n + v.nodes.length, 0);
  const status =
    page.status === 'error'
      ? '<span class="badge status-error">could not be scanned</span>'
      : `<span class="badge status-ok">scanned</span>`;
  const parts = [
    `<article class="page" aria-labelledby="${id}">`,
    `<h3 id="${id}">${esc(page.url)}</h3>`,
    `<p>${status} ${page.httpStatus === null ? '' : `HTTP ${page.httpStatus}. `}` +
      (page.status === 'error' ? '' : `${plural(page.violations.length, 'violated rule')}, ${plural(nodes, 'failing element')}.`) +
      `${page.finalUrl && page.finalUrl !== page.url ? ` Redirected to ${esc(page.finalUrl)}.` : ''}</p>`,
  ];
  if (page.error) {
    parts.push(
      `<p class="error" role="note"><strong>${esc(page.error.code)}</strong>: ${esc(page.error.message)}` +
        `${page.error.retryable ? ' (may succeed if retried)' : ''}</p>`,
    );
  }
  parts.push(renderTimings(page), ...sortByImpact(page.violations).map((v, i) => renderViolation(v, `${id}-rule-${i + 1}`)));
  if (page.fixed && page.fixed.length > 0) {
    const items = page.fixed.map((f) => `<li><code>${esc(f.id)}</code> at <code>${esc(targetText(f.target))}</code></li>`);
    parts.push(`<h4>Fixed since baseline</h4>\n<ul>\n${items.join('\n')}\n</ul>`);
  }
  parts.push('</article>');
  return parts.join('\n');
}

function renderTimings(page: PageResult): string {
  const t = page.timings;
  const cells = [t.navigationMs, t.settleMs, t.axeMs, t.totalMs].map((ms) => `<td>${formatMs(ms)}</td>`).join('');
  return `<table class="timings">
<caption>Timings</caption>
<thead><tr><th scope="col">Navigation</th><th scope="col">Settle</th><th scope="col">Checks</th><th scope="col">Total</th></tr></thead>
<tbody><tr>${cells}</tr></tbody>
</table>`;
}

function renderViolation(v: Violation, id: string): string {
  const impact = v.impact ?? 'unknown';
  const sc = v.wcag.length > 0 ? `WCAG ${v.wcag.map(esc).join(', ')}` : 'No WCAG success criterion';
  const hasBaseline = v.nodes.some((n) => n.baseline !== undefined);
  return `<section class="violation" aria-labelledby="${id}">
<h4 id="${id}"><span class="badge impact-${esc(impact)}">${esc(impact)}</span> <code>${esc(v.id)}</code>: ${esc(v.help)}</h4>
<p>${sc}.${v.description ? ` ${esc(v.description)}` : ''}</p>
<p>${helpLink(v)}</p>
<table class="nodes">
<caption>${plural(v.nodes.length, 'failing element')} for ${esc(v.id)}</caption>
<thead><tr><th scope="col">Target</th><th scope="col">HTML</th><th scope="col">How to fix</th>${hasBaseline ? '<th scope="col">Baseline</th>' : ''}</tr></thead>
<tbody>
${v.nodes.map((n) => renderNode(n, hasBaseline)).join('\n')}
</tbody>
</table>
</section>`;
}

function renderNode(n: ViolationNode, hasBaseline: boolean): string {
  const badge = n.baseline ? `<span class="badge baseline-${esc(n.baseline)}">${esc(n.baseline.replace('-', ' '))}</span>` : '';
  return `<tr><td><code>${esc(targetText(n.target))}</code></td><td><pre><code>${esc(n.html)}</code></pre></td>` +
    `<td class="summary-text">${esc(n.failureSummary)}</td>${hasBaseline ? `<td>${badge}</td>` : ''}</tr>`;
}

function helpLink(v: Violation): string {
  // Only http(s) becomes a link: a javascript: or data: URL from tampered input must stay inert.
  if (!/^https?:\/\//i.test(v.helpUrl)) return v.helpUrl ? `More information: ${esc(v.helpUrl)}` : '';
  return `<a href="${esc(v.helpUrl)}" rel="noopener noreferrer">How to fix ${esc(v.id)}</a>`;
}

function sortByImpact(violations: Violation[]): Violation[] {
  const rank = (i: Impact | null): number => IMPACTS.indexOf(i ?? 'minor');
  return [...violations].sort((a, b) => rank(b.impact) - rank(a.impact));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/** Escapes text for element content and double- or single-quoted attribute values. */
function esc(value: string): string {
  // Control characters are HTML parse errors and invisible anyway.
  return value
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

// Colours keep at least 4.5:1 contrast against their backgrounds (WCAG 1.4.3).
const STYLE = `
:root { color: #1a1a1a; background: #ffffff; font: 16px/1.5 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
h1, h2, h3, h4 { line-height: 1.25; }
h3 { word-break: break-all; border-top: 2px solid #4a4a4a; padding-top: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; width: 100%; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { border: 1px solid #767676; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
table.summary, table.timings { width: auto; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; }
code { font-family: ui-monospace, monospace; font-size: 0.9em; }
.summary-text { white-space: pre-wrap; }
a { color: #0b4fa8; }
a:focus-visible { outline: 3px solid #1a1a1a; outline-offset: 2px; }
.badge { display: inline-block; border-radius: 0.25rem; padding: 0 0.4rem; font-size: 0.85em; font-weight: 600; color: #ffffff; }
.impact-critical { background: #8b0000; }
.impact-serious { background: #a4361b; }
.impact-moderate { background: #7a5200; }
.impact-minor, .impact-unknown { background: #35577d; }
.status-ok { background: #1d6b2f; }
.status-error, .error strong { background: #8b0000; }
.error { border-left: 4px solid #8b0000; padding-left: 0.5rem; }
.error strong { color: #ffffff; padding: 0 0.25rem; }
.baseline-new { background: #8b0000; }
.baseline-persisting { background: #4a4a4a; }
.baseline-not-comparable { background: #7a5200; }
`;
