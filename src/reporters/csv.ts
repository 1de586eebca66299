import type { Report } from '../domain/scan.js';
import { targetText } from './summary.js';

const HEADER = [
  'url', 'status', 'rule', 'impact', 'wcag', 'help', 'helpUrl', 'target',
  'html', 'failureSummary', 'fingerprint', 'baseline',
] as const;

type Row = Record<(typeof HEADER)[number], string>;

/** RFC 4180 CSV, one row per failing node plus one per page that could not be scanned. */
export function renderCsv(report: Report): string {
  const rows: Row[] = [];
  for (const page of report.pages) {
    if (page.status === 'error' || page.error) {
      rows.push({
        url: page.url, status: 'error', rule: page.error?.code ?? '', impact: '', wcag: '', help: '',
        helpUrl: '', target: '', html: '', failureSummary: page.error?.message ?? '', fingerprint: '', baseline: '',
      });
    }
    for (const v of page.violations) {
      for (const node of v.nodes) {
        rows.push({
          url: page.url,
          status: page.status,
          rule: v.id,
          impact: v.impact ?? '',
          wcag: v.wcag.join(' '),
          help: v.help,
          helpUrl: v.helpUrl,
          target: targetText(node.target),
          html: node.html,
          failureSummary: node.failureSummary,
          fingerprint: node.fingerprint,
          baseline: node.baseline ?? '',
        });
      }
    }
  }
  const lines = [HEADER.join(','), ...rows.map((row) => HEADER.map((key) => csvField(row[key])).join(','))];
  return `${lines.join('\r\n')}\r\n`;
}

/** C0 controls but tab, LF and CR (line breaks stay, inside a quoted field), and DEL. */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

/**
 * One field: control characters replaced (some importers end a row or the file on them), then
 * defused against spreadsheet formulas, then quoted when RFC 4180 requires it. Every column is
 * text (none holds a number), so each is defused alike.
 */
function csvField(value: string): string {
  const printable = value.replace(CONTROL, '\uFFFD');
  // Spreadsheets evaluate cells starting with these as formulas; page content is attacker-controlled.
  // A leading quote makes the cell text (OWASP); checked after the replacement, so a control
  // character in front cannot hide the formula behind it.
  const safe = /^[=+\-@\t\r]/.test(printable) ? `'${printable}` : printable;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
