import type { Report } from '../domain/scan.js';
import { renderCsv } from './csv.js';
import { renderHtml } from './html.js';
import { renderJson } from './json.js';
import { renderJunit } from './junit.js';
import { renderPretty } from './pretty.js';
import { renderSarif } from './sarif.js';

export type ReportFormat = 'pretty' | 'json' | 'junit' | 'sarif' | 'html' | 'csv';

export const REPORT_FORMATS: readonly ReportFormat[] = ['pretty', 'json', 'junit', 'sarif', 'html', 'csv'];

/** True when `value` names a report format (for CLI and API input). */
export function isReportFormat(value: string): value is ReportFormat {
  return (REPORT_FORMATS as readonly string[]).includes(value);
}

/**
 * The format a report file's name asks for (`a11y.sarif`, `junit.xml`, `report.html`), JSON
 * otherwise: what goes into a file never depends on whether stdout is a terminal.
 */
export function formatOfFile(path: string): ReportFormat {
  const name = path.toLowerCase();
  if (name.endsWith('.sarif') || name.endsWith('.sarif.json')) return 'sarif';
  if (name.endsWith('.xml')) return 'junit';
  if (name.endsWith('.html') || name.endsWith('.htm')) return 'html';
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.txt')) return 'pretty';
  return 'json';
}

/** The report in `format`; `color` only affects `pretty`. */
export function render(report: Report, format: ReportFormat, options: { color?: boolean } = {}): string {
  switch (format) {
    case 'pretty':
      return renderPretty(report, { color: options.color ?? false });
    case 'json':
      return renderJson(report);
    case 'junit':
      return renderJunit(report);
    case 'sarif':
      return renderSarif(report);
    case 'html':
      return renderHtml(report);
    case 'csv':
      return renderCsv(report);
  }
}
