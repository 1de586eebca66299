import { z } from 'zod';
import { DEFAULT_VIEWPORT, type BaselineStatus, type Impact, type PageResult, type Report, type ScanOptions, type Violation } from '../domain/scan.js';
import { impactAtLeast } from '../domain/wcag.js';
import { WcagaiError } from '../errors/catalogue.js';
import { summarize } from './summary.js';

type Fixed = NonNullable<PageResult['fixed']>[number];

/**
 * Marks each node `new` or `persisting` against the baseline and lists baseline findings now gone.
 * A node the baseline cannot speak for is `not-comparable`: its page failed in the baseline, or
 * its rule did not run there (when the baseline lists the rules that ran). A page missing from the
 * baseline is compared (its findings are new: the page is).
 */
export function applyBaseline(report: Report, baseline: Report): Report {
  const baselinePages = new Map<string, PageResult>();
  for (const page of baseline.pages) {
    if (!baselinePages.has(page.url)) baselinePages.set(page.url, page);
  }
  const sameScope = scopeChange(report.options, baseline.options) === '';
  const pages = report.pages.map((page): PageResult => {
    const before = baselinePages.get(page.url);
    const usable = before?.status !== 'error';
    // Older reports may lack the manifest: then every rule counts as having run.
    const ranBefore = Array.isArray(before?.rules?.ran) ? new Set(before.rules.ran) : null;
    const known = new Set<string>();
    for (const v of before?.violations ?? []) for (const n of v.nodes) known.add(n.fingerprint);
    const seen = new Set<string>();
    const violations = page.violations.map((v) => {
      const comparable = !before || (usable && (!ranBefore || ranBefore.has(v.id)));
      return {
        ...v,
        nodes: v.nodes.map((n) => {
          seen.add(n.fingerprint);
          const status: BaselineStatus = known.has(n.fingerprint) ? 'persisting' : comparable ? 'new' : 'not-comparable';
          return { ...n, baseline: status };
        }),
      };
    });
    const fixed: Fixed[] = [];
    // A page that failed to scan now says nothing about the baseline's findings: none are "fixed".
    // Nor does a rule that did not run this time (--rules, --disable-rules, another level), nor a
    // scan of another part of the page (--include, --exclude, --viewport changed since).
    if (page.status === 'ok' && before && sameScope) {
      const listed = new Set<string>();
      const ran = new Set(page.rules.ran);
      for (const v of before.violations) {
        if (!ran.has(v.id)) continue;
        for (const n of v.nodes) {
          if (seen.has(n.fingerprint) || listed.has(n.fingerprint)) continue;
          listed.add(n.fingerprint);
          fixed.push({ id: v.id, fingerprint: n.fingerprint, target: [...n.target] });
        }
      }
    }
    return { ...page, violations, fixed };
  });
  return { ...report, pages, summary: summarize(pages) };
}

/** The window a scan without --viewport uses (the engine's default), as scopeChange compares it. */
const DEFAULT_VIEWPORT_KEY = `${DEFAULT_VIEWPORT.width}x${DEFAULT_VIEWPORT.height}`;

/**
 * What differs between the part of each page two scans checked, "" when nothing: the --include
 * and --exclude selectors and the window size. A finding outside this run's part (excluded now,
 * or shown only at the other width) is absent without being fixed. A report without options
 * (hand-made, or older) counts as the default scope.
 */
export function scopeChange(now: Partial<ScanOptions> | undefined, before: Partial<ScanOptions> | undefined): string {
  const selectors = (list: unknown): string[] => (Array.isArray(list) ? [...list].map(String).sort() : []);
  const shown = (list: string[]): string => (list.length ? list.map((s) => JSON.stringify(s)).join(', ') : 'none');
  const viewport = (options: Partial<ScanOptions> | undefined): string => {
    const v = options?.viewport;
    return v && typeof v === 'object' ? `${v.width}x${v.height}` : DEFAULT_VIEWPORT_KEY;
  };
  const changes: string[] = [];
  for (const key of ['include', 'exclude'] as const) {
    const [was, is] = [selectors(before?.[key]), selectors(now?.[key])];
    if (JSON.stringify(was) !== JSON.stringify(is)) changes.push(`--${key} ${shown(was)} there, ${shown(is)} now`);
  }
  if (viewport(before) !== viewport(now)) changes.push(`viewport ${viewport(before)} there, ${viewport(now)} now`);
  return changes.join('; ');
}

const nodeSchema = z.object({ fingerprint: z.string(), target: z.array(z.string()) });
const violationSchema = z.object({ id: z.string(), nodes: z.array(nodeSchema) });
const reportSchema = z.object({
  tool: z.object({ name: z.string(), version: z.string() }),
  pages: z.array(z.object({ url: z.string(), violations: z.array(violationSchema) })),
});

/** Parses a previous JSON report for use as a baseline; throws USAGE naming `source` when it is not one. */
export function loadBaseline(text: string, source: string): Report {
  const fail = (what: string): never => {
    throw new WcagaiError('USAGE', `${source}: not a wcagai JSON report (${what})`);
  };
  let data: unknown;
  try {
    // Editors on Windows like to save JSON with a BOM, which JSON.parse rejects.
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    return fail(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = reportSchema.safeParse(data);
  if (!parsed.success) return fail(describeIssue(parsed.error.issues[0], data));
  // Only the fields the baseline comparison reads are checked; the rest is kept as written.
  return data as Report;
}

/** "pages[0].url: expected string, got number" rather than zod's generic wording. */
function describeIssue(issue: z.core.$ZodIssue | undefined, data: unknown): string {
  if (!issue) return 'unexpected shape';
  const where = formatPath(issue.path);
  if (issue.code !== 'invalid_type') return `${where ? `${where}: ` : ''}${issue.message}`;
  const actual = valueAt(data, issue.path);
  if (actual === undefined) return `${where || 'value'} is missing (expected ${issue.expected})`;
  return `${where ? `${where}: ` : ''}expected ${issue.expected}, got ${kindOf(actual)}`;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

/**
 * Nodes at or above `failOn` that should fail the run: once a baseline is applied, new ones and
 * those the baseline could not compare (nothing says they were there before: fail closed).
 */
export function gateCount(report: Report, failOn: Impact, baselineApplied: boolean): number {
  let count = 0;
  for (const page of report.pages) for (const v of page.violations) count += gateNodes(v, failOn, baselineApplied);
  return count;
}

/** The nodes of one violation that count towards the gate (see gateCount). */
export function gateNodes(v: Violation, failOn: Impact, baselineApplied: boolean): number {
  if (!impactAtLeast(v.impact, failOn)) return 0;
  // A node with no status under a baseline was never classified: fail closed and count it.
  return v.nodes.filter((node) => !baselineApplied || node.baseline === 'new' || node.baseline === 'not-comparable' || node.baseline === undefined).length;
}
