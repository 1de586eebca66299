import { createHash } from 'node:crypto';
import type { Impact, PageResult, ScanErrorInfo, Violation, ViolationNode } from '../domain/scan.js';
import { successCriteria } from '../domain/wcag.js';
import { axeVersion } from './page-script.js';

/** A page result before its scan: nothing found yet, or (with `error`) a page that could not be scanned. */
export function emptyResult(url: string, error?: ScanErrorInfo): PageResult {
  return {
    url,
    finalUrl: null,
    status: error ? 'error' : 'ok',
    httpStatus: null,
    ...(error ? { error } : {}),
    timings: { navigationMs: 0, settleMs: 0, axeMs: 0, totalMs: 0 },
    rules: { axeVersion: axeVersion(), tags: [], ran: [] },
    violations: [],
  };
}

/** The part of an axe-core result the page sends back (slimmed in the page to keep CDP traffic small). */
export interface RawAxeViolation {
  id: string;
  impact: string | null;
  tags: string[];
  help: string;
  description: string;
  helpUrl: string;
  nodes: Array<{ target: unknown[]; html: string; failureSummary?: string }>;
}

export interface RawAxeResult {
  violations: RawAxeViolation[];
  ran: string[];
}

/** axe targets are nested arrays across iframes and shadow roots; wcagai uses " >>> " between levels. */
export function flattenTarget(target: unknown[]): string[] {
  return target.map((t) => (Array.isArray(t) ? t.map(String).join(' >>> ') : String(t)));
}

function normalizeSelector(selector: string): string {
  return selector.replace(/\s+/g, ' ').trim();
}

function normalizeSnippet(html: string): string {
  return html.replace(/\s+/g, ' ').trim();
}

/** Stable id of a finding: rule + normalized target + hash of the normalized snippet. */
export function fingerprint(ruleId: string, target: readonly string[], html: string): string {
  const snippet = createHash('sha256').update(normalizeSnippet(html)).digest('hex').slice(0, 16);
  return createHash('sha256')
    .update(`${ruleId}\u0000${target.map(normalizeSelector).join('\u0001')}\u0000${snippet}`)
    .digest('hex')
    .slice(0, 24);
}

const IMPACT_SET = new Set(['minor', 'moderate', 'serious', 'critical']);

/** axe-core violations as wcagai violations, with success criteria and fingerprints. */
export function toViolations(raw: readonly RawAxeViolation[]): Violation[] {
  return raw.map((v) => ({
    id: v.id,
    impact: v.impact && IMPACT_SET.has(v.impact) ? (v.impact as Impact) : null,
    wcag: successCriteria(v.tags),
    tags: v.tags,
    help: v.help,
    description: v.description,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n): ViolationNode => {
      const target = flattenTarget(n.target);
      return { target, html: n.html, failureSummary: n.failureSummary ?? '', fingerprint: fingerprint(v.id, target, n.html) };
    }),
  }));
}
