import type { Report } from '../domain/scan.js';

/** The report as pretty-printed JSON (the shape `loadBaseline` reads back). */
export function renderJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
