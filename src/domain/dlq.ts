/** Plain types of the dead-letter queue, shared by the queue, the admin API, the CLI and its tables. */
import type { Priority } from './request.js';
import type { ScanOptions } from './scan.js';

/** How error codes are spelled (HTTP_SERVER_ERROR): the form the DLQ's code filters accept. */
export const ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * A host filter spelled as entries carry their host (`new URL(url).host`): lower case, no
 * default port (`Shop.Example.com:443` is `shop.example.com`). What is not a host stays as given
 * (and matches nothing).
 */
export function hostFilterOf(value: string): string {
  const u = hostUrl(value);
  if (!u) return value;
  return u.port === '443' ? u.hostname : u.host;
}

/** `value` read as a host (`shop.example.com`, `host:port`), or null for a URL, a path or no host at all. */
function hostUrl(value: string): URL | null {
  if (value.includes('://')) return null;
  try {
    const u = new URL(`http://${value.trim()}`);
    return u.pathname !== '/' || u.search || u.hash || u.username || u.password ? null : u;
  } catch {
    return null;
  }
}

/**
 * Whether `value` is a host as entries carry it (`shop.example.com`, `host:port`): a URL or a
 * path given as a host filter would match nothing, in silence (`retry --host https://shop/`
 * retried none), so the CLI and the admin API refuse it.
 */
export function isHostFilter(value: string): boolean {
  return hostUrl(value) !== null;
}

/** One failed attempt of a scan job. */
export interface DlqAttempt {
  /** 1-based attempt number within its job. */
  attempt: number;
  /** The job this attempt belonged to (the original job or a replay). */
  jobId: string;
  code: string;
  message: string;
  /** ISO time of the failure. */
  at: string;
}

/** One replay of an entry. */
export interface DlqRetry {
  at: string;
  /** The replay's scan id; null for the moment between claiming the entry and queueing the job. */
  jobId: string | null;
  outcome: 'pending' | 'completed' | 'failed';
}

export type DlqStatus = 'dead' | 'retrying';

/** A scan that failed for good, kept until it is replayed successfully, deleted or purged. */
export interface DlqEntry {
  /** `dlq_…` */
  id: string;
  /** The original scan id. */
  jobId: string;
  request: { url: string; options: ScanOptions; priority: Priority };
  /** The target's host (with port when not the default), the per-host index. */
  host: string;
  /** Error code of the last failure (catalogue code, or STALLED). */
  code: string;
  message: string;
  retryable: boolean;
  /** Attempts made across the original job and its failed replays. */
  attemptsMade: number;
  attempts: DlqAttempt[];
  firstFailedAt: string;
  lastFailedAt: string;
  /** The worker that ran the last attempt, when known. */
  workerId?: string;
  requestId?: string;
  batchId?: string;
  retries: DlqRetry[];
  status: DlqStatus;
}

/**
 * Failure patterns: every figure is read from counters, O(#codes + #hosts + #days), once the replays
 * of entries being retried were checked (O(#retrying)).
 */
export interface DlqStats {
  total: number;
  byCode: Record<string, number>;
  byHost: Record<string, number>;
  /** UTC day (YYYY-MM-DD) of each entry's last failure. */
  byDay: Record<string, number>;
  /** Last failure time of the oldest and newest entry (ISO), null when empty. */
  oldest: string | null;
  newest: string | null;
}

/** The `/health/detailed` section. */
export interface DlqSummary {
  size: number;
  oldest: string | null;
  /** Entries whose last failure is less than an hour old. */
  lastHourAdded: number;
}

export interface DlqListQuery {
  limit?: number;
  cursor?: string;
  code?: string;
  host?: string;
}

/**
 * One page of entries, newest first; `nextCursor` is null on the last page. A page filtered by
 * both code and host may hold fewer than `limit` entries (even none) and still have a cursor: the
 * walk through the code's index is bounded per page, and paging on reaches the older matches.
 */
export interface DlqPage {
  entries: DlqEntry[];
  nextCursor: string | null;
}

/** Bulk replay selector: exactly one of the three. */
export type DlqFilter = { code: string } | { host: string } | { all: true };

export interface DlqRetryResult {
  id: string;
  jobId: string;
  status: 'retrying';
}

export interface DlqBulkRetryResult {
  matched: number;
  retried: DlqRetryResult[];
  skipped: Array<{ id: string; reason: string }>;
  /** Set when replays stopped early (QUEUE_FULL): entries not attempted stay dead. */
  stoppedBy?: string;
}

/** What operators do with the DLQ; served from Redis directly or through the admin API. */
export interface DlqOperations {
  list(query: DlqListQuery): Promise<DlqPage>;
  /** Throws NOT_FOUND for an unknown id. */
  get(id: string): Promise<DlqEntry>;
  stats(): Promise<DlqStats>;
  retry(id: string): Promise<DlqRetryResult>;
  retryMany(filter: DlqFilter): Promise<DlqBulkRetryResult>;
  /** Throws NOT_FOUND for an unknown id. */
  remove(id: string): Promise<void>;
  purge(options: { olderThanMs: number }): Promise<{ removed: number }>;
}

/** The DLQ id format. */
export const DLQ_ID = /^dlq_[A-Za-z0-9_-]{1,64}$/;

/** Summary row of `wcagai dlq list --json`. */
export interface DlqListRow {
  id: string;
  url: string;
  host: string;
  code: string;
  message: string;
  failedAt: string;
  attempts: number;
  status: DlqStatus;
  jobId: string;
}

export function dlqListRow(entry: DlqEntry): DlqListRow {
  return {
    id: entry.id,
    url: entry.request.url,
    host: entry.host,
    code: entry.code,
    message: entry.message,
    failedAt: entry.lastFailedAt,
    attempts: entry.attemptsMade,
    status: entry.status,
    jobId: entry.jobId,
  };
}

/** Describes a filter for messages and prompts. */
export function describeDlqFilter(filter: DlqFilter): string {
  return 'code' in filter ? `code ${filter.code}` : 'host' in filter ? `host ${filter.host}` : 'all entries';
}
