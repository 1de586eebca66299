import type { Impact, PageResult, Report, ReportSummary, Violation } from '../domain/scan.js';
import { IMPACTS } from '../domain/scan.js';
import { clean } from '../domain/text.js';
import { targetText } from './summary.js';

export interface PrettyOptions {
  color: boolean;
}

/** How many targets a violation lists before "… and N more". */
const MAX_TARGETS = 3;

const ESC = '\u001b[';
const RESET = `${ESC}0m`;
const IMPACT_STYLE: Record<Impact | 'unknown', string> = {
  critical: '1;31',
  serious: '31',
  moderate: '33',
  minor: '36',
  unknown: '2',
};

/** Human-readable terminal text; ANSI colours only when `color` is true. */
export function renderPretty(report: Report, options: PrettyOptions): string {
  const paint = (style: string, text: string): string => (options.color ? `${ESC}${style}m${text}${RESET}` : text);
  const lines: string[] = [];
  for (const page of report.pages) lines.push(...renderPage(page, paint), '');
  lines.push(summaryLine(report.summary, paint));
  return `${lines.join('\n')}\n`;
}

type Paint = (style: string, text: string) => string;

function renderPage(page: PageResult, paint: Paint): string[] {
  const url = paint('1', clean(page.url));
  if (page.status === 'error' || page.error) {
    const code = page.error?.code ?? 'error';
    return [`${url}  ${paint('1;31', `error ${clean(code)}`)}: ${clean(page.error?.message ?? 'page could not be scanned')}`];
  }
  const nodes = page.violations.reduce((n, v) => n + v.nodes.length, 0);
  const lines = [page.violations.length === 0 ? `${url}  ${paint('32', 'no violations')}` : `${url}  ${plural(page.violations.length, 'violation')}, ${plural(nodes, 'element')}`];
  for (const v of sortByImpact(page.violations)) lines.push(...renderViolation(v, paint));
  if (page.fixed && page.fixed.length > 0) lines.push(`  ${paint('32', `${page.fixed.length} fixed since baseline`)}`);
  return lines;
}

function renderViolation(v: Violation, paint: Paint): string[] {
  const impact = v.impact ?? 'unknown';
  const sc = v.wcag.length > 0 ? `  [WCAG ${v.wcag.join(', ')}]` : '';
  const lines = [`  ${paint(IMPACT_STYLE[impact], impact.padEnd(8))} ${clean(v.id)}: ${clean(v.help)}${clean(sc)}`];
  for (const node of v.nodes.slice(0, MAX_TARGETS)) {
    const status = node.baseline ? ` ${paint(node.baseline === 'persisting' ? '2' : '1', `(${node.baseline === 'not-comparable' ? 'not comparable' : node.baseline})`)}` : '';
    lines.push(`      ${clean(targetText(node.target))}${status}`);
  }
  if (v.nodes.length > MAX_TARGETS) lines.push(`      … and ${v.nodes.length - MAX_TARGETS} more`);
  return lines;
}

function summaryLine(s: ReportSummary, paint: Paint): string {
  const impacts = [...IMPACTS]
    .reverse()
    .map((i) => `${s.byImpact[i]} ${i}`)
    .join(', ');
  const parts = [
    `${plural(s.pages, 'page')}${s.pagesFailed > 0 ? ` (${paint('31', `${s.pagesFailed} failed`)})` : ''}`,
    plural(s.violations, 'violation'),
    `${plural(s.nodes, 'element')} (${impacts})`,
  ];
  if (s.baseline) {
    const unknown = s.baseline.notComparable ? `, ${s.baseline.notComparable} not comparable (page failed or rule not run in the baseline)` : '';
    parts.push(`baseline: ${s.baseline.new} new, ${s.baseline.persisting} persisting, ${s.baseline.fixed} fixed${unknown}`);
  }
  return paint('1', parts.join(' · '));
}

function sortByImpact(violations: Violation[]): Violation[] {
  const rank = (i: Impact | null): number => IMPACTS.indexOf(i ?? 'minor');
  return [...violations].sort((a, b) => rank(b.impact) - rank(a.impact));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
