/** Plain types shared by the scan engine, the reporters, the queue and the API. */

export type WcagLevel = 'A' | 'AA' | 'AAA';
export type WcagVersion = '2.0' | '2.1' | '2.2';
export type Impact = 'minor' | 'moderate' | 'serious' | 'critical';
export const IMPACTS: readonly Impact[] = ['minor', 'moderate', 'serious', 'critical'];

/** What to check on a page: the axe-core selection and the browser's viewport. */
export interface ScanOptions {
  wcagLevel: WcagLevel;
  wcagVersion: WcagVersion;
  bestPractice: boolean;
  /** Only these rule ids run (in addition to the tag selection being ignored). */
  rules?: string[];
  disableRules?: string[];
  /** CSS selectors limiting the scanned region. */
  include?: string[];
  exclude?: string[];
  viewport?: { width: number; height: number };
}

/** Viewport sizes a scan accepts, in CSS pixels, for width and height alike. */
export const VIEWPORT_SIZE = Object.freeze({ min: 200, max: 7_680 });

/** The browser window of a scan without a viewport option, in CSS pixels. */
export const DEFAULT_VIEWPORT = Object.freeze({ width: 1280, height: 1024 });

export const DEFAULT_SCAN_OPTIONS: ScanOptions = Object.freeze({
  wcagLevel: 'AA',
  wcagVersion: '2.2',
  bestPractice: false,
}) as ScanOptions;

export interface ViolationNode {
  target: string[];
  html: string;
  failureSummary: string;
  /** rule + normalized target + snippet hash: stable across runs for the same finding. */
  fingerprint: string;
  /** Set when a baseline was given. */
  baseline?: BaselineStatus;
}

/** `not-comparable`: the baseline has no usable result for it (its page failed there, or its rule did not run). */
export type BaselineStatus = 'new' | 'persisting' | 'fixed' | 'not-comparable';

export interface Violation {
  id: string;
  impact: Impact | null;
  /** WCAG success criteria, e.g. ["1.1.1"]. */
  wcag: string[];
  tags: string[];
  help: string;
  description?: string;
  helpUrl: string;
  nodes: ViolationNode[];
}

export interface PageTimings {
  navigationMs: number;
  settleMs: number;
  axeMs: number;
  totalMs: number;
}

export interface ScanErrorInfo {
  code: string;
  message: string;
  retryable: boolean;
}

export interface RuleManifest {
  axeVersion: string;
  tags: string[];
  /** Rule ids that ran. */
  ran: string[];
}

export interface PageResult {
  url: string;
  finalUrl: string | null;
  status: 'ok' | 'error';
  httpStatus: number | null;
  error?: ScanErrorInfo;
  timings: PageTimings;
  rules: RuleManifest;
  violations: Violation[];
  /** Findings of the baseline that are no longer present on this page. */
  fixed?: Array<{ id: string; fingerprint: string; target: string[] }>;
  /** AI remediation: a short fix per violated rule (queued scans with AI_ENABLED only). */
  suggestions?: RemediationSuggestion[];
  /** Integrations that failed for this scan (e.g. ["ai"]); the scan itself still completed. */
  degraded?: string[];
  /** Outcome of each integration that ran after the scan (e.g. the HubSpot note). */
  integrations?: Record<string, IntegrationOutcome>;
}

export interface RemediationSuggestion {
  /** The axe rule id. */
  rule: string;
  fix: string;
}

export interface IntegrationOutcome {
  status: 'pending' | 'done' | 'skipped' | 'failed';
  at: string;
  /** What was created (e.g. the HubSpot note id) or why it was skipped or failed. */
  detail?: string;
  code?: string;
}

export interface ReportSummary {
  pages: number;
  pagesFailed: number;
  violations: number;
  nodes: number;
  byImpact: Record<Impact, number>;
  /** Present when compared with a baseline: node counts by status (`notComparable` only when some are). */
  baseline?: { new: number; persisting: number; fixed: number; notComparable?: number };
}

export interface Report {
  tool: { name: string; version: string };
  axeVersion: string;
  startedAt: string;
  finishedAt: string;
  options: ScanOptions & { failOn?: Impact; baseline?: string };
  summary: ReportSummary;
  pages: PageResult[];
}
