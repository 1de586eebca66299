import { createHash } from 'node:crypto';
import { z } from 'zod';
import { randomId } from '../domain/ids.js';
import { scanOptionsSchema, type Priority } from '../domain/request.js';
import type { PageResult, ScanErrorInfo, ScanOptions } from '../domain/scan.js';

/** Bumped when the job payload changes shape; workers refuse payloads they do not know. */
export const JOB_SCHEMA_VERSION = 1;

export const jobDataSchema = z.object({
  v: z.literal(JOB_SCHEMA_VERSION),
  url: z.string(),
  options: scanOptionsSchema,
  cacheKey: z.string(),
  requestId: z.string().optional(),
  /** The submitting request's W3C trace id; optional, so jobs queued before it existed still run. */
  traceId: z.string().optional(),
  batchId: z.string().optional(),
  dlqId: z.string().optional(),
});
export type ScanJobData = z.output<typeof jobDataSchema>;

export const PRIORITY: Record<Priority, number> = { high: 1, normal: 5, low: 10 };

/** A new scan id: URL-safe, not numeric (BullMQ refuses integer-like custom ids). */
export function newScanId(): string {
  return randomId('scan_', 12);
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, canonical(v)]));
  }
  return value;
}

/**
 * The options as the scan reads them: rule ids and selectors are sets (any order, a repeat once),
 * and an empty list selects what no list does.
 */
function scanIdentity(options: ScanOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const field of ['rules', 'disableRules', 'include', 'exclude'] as const) {
    const list = options[field];
    out[field] = list?.length ? [...new Set(list)].sort() : undefined;
  }
  return out;
}

/** Identity of a scan request for cache and dedup: normalized URL (no fragment) + canonical options. */
export function cacheKeyOf(url: string, options: ScanOptions): string {
  const u = new URL(url);
  u.hash = '';
  return createHash('sha256').update(JSON.stringify([u.href, canonical(scanIdentity(options))])).digest('hex').slice(0, 32);
}

export type ScanStatus = 'queued' | 'active' | 'completed' | 'failed';

/** What `GET /api/scans/:id` answers. */
export interface ScanView {
  id: string;
  status: ScanStatus;
  url: string;
  options: ScanOptions;
  attempts: number;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  cached: boolean;
  requestId?: string;
  batchId?: string;
  error?: ScanErrorInfo;
  result?: PageResult;
}
