import { Job } from 'bullmq';
import type { DlqEntry } from '../../../src/domain/dlq.js';
import type { ScanView } from '../../../src/queue/job.js';
import { ResultStore } from '../../../src/queue/store.js';
import { jobCounts, type LogEntry, type TestService } from '../../support/service.js';
import { distinctWrites, type ResultWrites } from './chaos-result-writes.js';

/** BullMQ states of a job that has not finished yet. */
const PENDING = new Set(['waiting', 'prioritized', 'waiting-children', 'delayed', 'active']);

/** How every accepted scan ended, and what went wrong in the accounting. */
export interface Accounting {
  scans: number;
  /** Completed once: a completed record, BullMQ says completed, no DLQ entry. */
  completed: number;
  /** In the DLQ once: a failed record, BullMQ says failed, exactly one DLQ entry. */
  dlq: number;
  /** Neither, and no longer in the queue: no final record, or failed without a DLQ entry. */
  lost: number;
  /** Still waiting, delayed or running when the accounting was made (the scenario did not settle in time). */
  pending: number;
  /** Ended twice: a second, different record stored, two completion log lines, two DLQ entries, or completed and in the DLQ. */
  duplicated: number;
  /** Scans started more than once (work redone after a fault; not an error). */
  rerun: number;
  /** DLQ entries by code. */
  dlqCodes: Record<string, number>;
  lostIds: string[];
  duplicatedIds: string[];
  /** Per scan id, why it was counted lost, pending or duplicated. */
  why: Record<string, string>;
}

/** Every DLQ entry of the service's prefix. */
export async function dlqEntries(api: TestService): Promise<DlqEntry[]> {
  const out: DlqEntry[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 100; page++) {
    const { entries, nextCursor } = await api.service.dlq.list({ limit: 1_000, ...(cursor ? { cursor } : {}) });
    out.push(...entries);
    if (!nextCursor) break;
    cursor = nextCursor;
  }
  return out;
}

/** The final records of `ids` (null where none is stored). */
export function finalRecords(api: TestService, ids: readonly string[]): Promise<Array<ScanView | null>> {
  const { service } = api;
  return new ResultStore(service.redis, service.keys, service.config.RESULT_TTL, 0).getMany(ids);
}

/**
 * Whether the scans have settled, waiting up to `timeoutMs` (0: look once): every one of `ids` has
 * a final record, the queue has nothing waiting, running or delayed, and every failed job has its
 * DLQ entry. Returns false at the deadline rather than throwing:
 * a scenario that never settles still reports its figures (the stragglers count as lost).
 */
export async function settle(api: TestService, ids: readonly string[], timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [records, counts, dlqSize] = await Promise.all([finalRecords(api, ids), jobCounts(api.service), api.service.dlq.size()]).catch(() => [null, null, null] as const);
    if (records && counts) {
      const busy = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.paused ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0);
      if (records.every((r) => r !== null) && busy === 0 && (counts.failed ?? 0) === dlqSize) return true;
    }
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface AccountingSources {
  /** Every log line of every process that ran scans (killed incarnations included). */
  workerLogs: ReadonlyArray<readonly LogEntry[]>;
  /** Result-key writes as Redis executed them, where they were watched. */
  writes?: ResultWrites;
}

/**
 * Accounts for every accepted scan from four independent records: the final record in the result
 * store, BullMQ's job state, the DLQ entries, and the workers' `scan.completed` log lines (plus,
 * when watched, every result write Redis executed). A scan is counted once as completed, DLQ or
 * lost; duplicated is counted beside that.
 */
export async function account(api: TestService, ids: readonly string[], sources: AccountingSources): Promise<Accounting> {
  // Job states first: a scan finishing meanwhile then reads as pending, never as finished without
  // its record (the record is stored before BullMQ moves the job out of active).
  const states = await Promise.all(ids.map(async (id) => (await Job.fromId(api.service.queue, id))?.getState() ?? 'missing'));
  const [records, entries] = await Promise.all([finalRecords(api, ids), dlqEntries(api)]);
  const dlqByJob = new Map<string, number>();
  const dlqCodes: Record<string, number> = {};
  for (const e of entries) {
    dlqByJob.set(e.jobId, (dlqByJob.get(e.jobId) ?? 0) + 1);
    dlqCodes[e.code] = (dlqCodes[e.code] ?? 0) + 1;
  }
  const completions = new Map<string, number>();
  const starts = new Map<string, number>();
  for (const logs of sources.workerLogs) {
    for (const e of logs) {
      const id = typeof e.jobId === 'string' ? e.jobId : undefined;
      if (!id) continue;
      if (e.event === 'scan.completed') completions.set(id, (completions.get(id) ?? 0) + 1);
      if (e.event === 'scan.start') starts.set(id, (starts.get(id) ?? 0) + 1);
    }
  }

  const result: Accounting = { scans: ids.length, completed: 0, dlq: 0, lost: 0, pending: 0, duplicated: 0, rerun: 0, dlqCodes, lostIds: [], duplicatedIds: [], why: {} };
  ids.forEach((id, i) => {
    const record = records[i];
    const state = states[i];
    const inDlq = dlqByJob.get(id) ?? 0;
    const completedLines = completions.get(id) ?? 0;
    if ((starts.get(id) ?? 0) > 1) result.rerun++;

    if (record?.status === 'completed' && state === 'completed' && inDlq === 0) result.completed++;
    else if (record?.status === 'failed' && state === 'failed' && inDlq === 1) result.dlq++;
    else if (PENDING.has(state!)) {
      result.pending++;
      result.why[id] = `pending: job ${state}, record ${record?.status ?? 'none'}`;
    } else {
      result.lost++;
      result.lostIds.push(id);
      result.why[id] = `lost: record ${record?.status ?? 'none'}, job ${state}, ${inDlq} DLQ entries`;
    }

    const dup: string[] = [];
    const stored = sources.writes ? distinctWrites(sources.writes, id) : 0;
    if (stored > 1) dup.push(`${stored} different records stored`);
    if (completedLines > 1) dup.push(`${completedLines} scan.completed lines`);
    if (inDlq > 1) dup.push(`${inDlq} DLQ entries`);
    if (inDlq > 0 && (record?.status === 'completed' || completedLines > 0)) dup.push('completed and in the DLQ');
    if (dup.length) {
      result.duplicated++;
      result.duplicatedIds.push(id);
      result.why[id] = [result.why[id], `duplicated: ${dup.join(', ')}`].filter(Boolean).join('; ');
    }
  });
  return result;
}

/**
 * What the workers logged about each scan in `ids` (event, attempt, code, message), for the test
 * output when a scan is unaccounted for.
 */
export function tracesOf(workerLogs: ReadonlyArray<readonly LogEntry[]>, ids: readonly string[]): Record<string, string[]> {
  const wanted = new Set(ids);
  const out: Record<string, string[]> = {};
  workerLogs.forEach((logs, worker) => {
    for (const e of logs) {
      const id = typeof e.jobId === 'string' ? e.jobId : undefined;
      if (!id || !wanted.has(id)) continue;
      const detail = [e.attempt !== undefined ? `attempt ${String(e.attempt)}` : '', e.code ? String(e.code) : '', e.event === 'scan.failed' ? String(e.msg ?? '') : ''].filter(Boolean).join(' ');
      (out[id] ??= []).push(`${String(e.time ?? '')} w${worker} ${String(e.event ?? e.msg)}${detail ? ` ${detail}` : ''}`);
    }
  });
  return out;
}
