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

/** How canonical writes an object's field that is not undefined (by default, canonical in turn). */
type FieldForm = (key: string, value: unknown) => unknown;
const asCanonical: FieldForm = (_key, value) => canonical(value);

/**
 * `value` with its objects' keys in order and their undefined fields left out, at every depth
 * (`field` gives the top-level fields' form; one it makes undefined is left out too).
 */
function canonical(value: unknown, field: FieldForm = asCanonical): unknown {
  if (Array.isArray(value)) return value.map((item) => canonical(item));
  if (value && typeof value === 'object') {
    // No prototype: a key named __proto__ is a field like any other.
    const out = Object.create(null) as Record<string, unknown>;
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      const form = v === undefined ? undefined : field(key, v);
      if (form !== undefined) out[key] = form;
    }
    return out;
  }
  return value;
}

/** Option lists that are sets: any order and a repeat once; an empty one selects what no list does. */
const SET_FIELDS: ReadonlySet<string> = new Set(['rules', 'disableRules', 'include', 'exclude']);

/** The options' fields as the scan reads them: set lists sorted without repeats (an empty one left out), the rest canonical. */
const asScanReadsIt: FieldForm = (key, value) => {
  if (!SET_FIELDS.has(key)) return canonical(value);
  const list = value as string[];
  return list.length ? [...new Set(list)].sort() : undefined;
};

/**
 * Identity of a scan request for cache and dedup: normalized URL (no fragment) + the options as the
 * scan reads them, in canonical form.
 * (One pass with no intermediate arrays: it runs on every submission. Its output is the same as
 * from sorting `Object.entries` and rebuilding each object, so keys stored before match.)
 */
export function cacheKeyOf(url: string, options: ScanOptions): string {
  const u = new URL(url);
  u.hash = '';
  return createHash('sha256').update(JSON.stringify([u.href, canonical(options, asScanReadsIt)])).digest('hex').slice(0, 32);
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
