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
