import type { Impact, PageResult, ReportSummary } from '../domain/scan.js';

/** Totals of a report's pages; `baseline` counts appear only once a baseline was applied. */
export function summarize(pages: PageResult[]): ReportSummary {
  const byImpact: Record<Impact, number> = { minor: 0, moderate: 0, serious: 0, critical: 0 };
  const baseline = { new: 0, persisting: 0, fixed: 0 };
  let compared = false;
  let notComparable = 0;
  let violations = 0;
  let nodes = 0;
  for (const page of pages) {
    violations += page.violations.length;
    if (page.fixed) {
      compared = true;
      baseline.fixed += page.fixed.length;
    }
    for (const violation of page.violations) {
      nodes += violation.nodes.length;
      // Unknown impact counts as minor, the same rule impactAtLeast applies to the gate.
      byImpact[violation.impact ?? 'minor'] += violation.nodes.length;
      for (const node of violation.nodes) {
        if (node.baseline === undefined) continue;
        compared = true;
        if (node.baseline === 'new') baseline.new++;
        else if (node.baseline === 'persisting') baseline.persisting++;
        else if (node.baseline === 'not-comparable') notComparable++;
      }
    }
  }
  const summary: ReportSummary = {
    pages: pages.length,
    pagesFailed: pages.filter((p) => p.status === 'error').length,
    violations,
    nodes,
    byImpact,
  };
  if (compared) summary.baseline = notComparable > 0 ? { ...baseline, notComparable } : baseline;
  return summary;
}

/**
 * One node target as a single string. axe gives one selector per frame / shadow boundary;
 * " >> " cannot be mistaken for the CSS child combinator and is shared by every reporter so a
 * finding reads the same in all formats.
 */
export function targetText(target: readonly string[]): string {
  return target.join(' >> ');
}
