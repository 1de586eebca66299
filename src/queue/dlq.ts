import type { DlqBulkRetryResult, DlqEntry, DlqFilter, DlqListQuery, DlqOperations, DlqPage, DlqRetryResult, DlqStats, DlqSummary } from '../domain/dlq.js';
import { DLQ_ID } from '../domain/dlq.js';
import type { Priority } from '../domain/request.js';
import type { ScanOptions } from '../domain/scan.js';
import { isWcagaiError, WcagaiError } from '../errors/catalogue.js';
import type { DlqStore } from './dlq-store.js';
import type { SubmitContext } from './producer.js';

/** How the DLQ queues a replay: ScanProducer.submit, or a stand-in in tests. */
export type ReplaySubmit = (url: string, options: ScanOptions, ctx: SubmitContext) => Promise<{ id: string }>;
/** Whether a replay job is still queued or running (a pending retry of a vanished job may be claimed again). */
export type ReplayLiveness = (jobId: string) => Promise<boolean>;

export interface DeadLetterQueueOptions {
  store: DlqStore;
  submit: ReplaySubmit;
  isLive: ReplayLiveness;
  /** A retry claimed but never given a job (its process died in between) may be claimed again after this. */
  staleClaimMs?: number;
  /** Replays queued at once by a bulk retry. */
  bulkConcurrency?: number;
  now?: () => number;
}

const DEFAULT_LIMIT = 50;
export const MAX_LIST_LIMIT = 1_000;

function notFound(id: string): WcagaiError {
  return new WcagaiError('NOT_FOUND', `no DLQ entry with id ${id}`, { details: { id } });
}

/**
 * The dead-letter queue's operations (list, stats, retry, delete, purge) over the Redis store;
 * the admin routes and `wcagai dlq` both use it. Capture lives in dlq-capture.ts.
 */
export class DeadLetterQueue implements DlqOperations {
  private readonly store: DlqStore;
  private readonly now: () => number;

  constructor(private readonly options: DeadLetterQueueOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
  }

  async list(query: DlqListQuery = {}): Promise<DlqPage> {
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? DEFAULT_LIMIT)), MAX_LIST_LIMIT);
    return this.store.list({ limit, ...(query.cursor ? { cursor: query.cursor } : {}), ...(query.code ? { code: query.code } : {}), ...(query.host ? { host: query.host } : {}) });
  }

  async get(id: string): Promise<DlqEntry> {
    const stored = DLQ_ID.test(id) ? await this.store.read(id) : null;
    if (!stored) throw notFound(id);
    return stored.entry;
  }

  stats(): Promise<DlqStats> {
    return this.store.stats();
  }

  /** Entries in the DLQ (the `wcagai_dlq_size` gauge). */
  size(): Promise<number> {
    return this.store.size();
  }

  summary(): Promise<DlqSummary> {
    return this.store.summary(this.now());
  }

  /**
   * Replays an entry as a new job (same request and request id, cache and dedup skipped, linked
   * back by dlqId). Claiming the entry is one atomic state change, so a concurrent second retry
   * gets CONFLICT instead of starting a second job.
   */
  async retry(id: string): Promise<DlqRetryResult> {
    const current = await this.get(id);
    const stale = current.status === 'retrying' ? await this.stalePending(current) : null;
    const claimAt = new Date(this.now()).toISOString();
    const { entry: claimed } = await this.store.update(id, (entry) => {
      const pending = entry.retries.filter((r) => r.outcome === 'pending');
      if (entry.status === 'retrying' && !(stale && pending.length === 1 && pending[0]!.at === stale.at && pending[0]!.jobId === stale.jobId)) {
        const jobId = pending[pending.length - 1]?.jobId;
        throw new WcagaiError('CONFLICT', `DLQ entry ${id} is already being retried${jobId ? ` as scan ${jobId}` : ''}`, { details: { id, ...(jobId ? { jobId } : {}) } });
      }
      for (const r of pending) r.outcome = 'failed';
      entry.status = 'retrying';
      entry.retries.push({ at: claimAt, jobId: null, outcome: 'pending' });
      return entry;
    });
    if (!claimed) throw notFound(id);
    const entry = claimed;
    let jobId: string;
    try {
      ({ id: jobId } = await this.options.submit(entry.request.url, entry.request.options, {
        priority: entry.request.priority as Priority,
        ...(entry.requestId ? { requestId: entry.requestId } : {}),
        dlqId: id,
        fresh: true,
      }));
    } catch (err) {
      // Not queued: give the claim back so the entry can be retried later.
      await this.store.update(id, (e) => {
        const i = e.retries.findIndex((r) => r.at === claimAt && r.jobId === null);
        if (i < 0) return undefined;
        e.retries.splice(i, 1);
        if (!e.retries.some((r) => r.outcome === 'pending')) e.status = 'dead';
        return e;
      });
      throw err;
    }
    // The replay may already have finished (the entry is gone) or failed (capture filled the job id in).
    await this.store.update(id, (e) => {
      const r = e.retries.find((x) => x.at === claimAt && x.jobId === null);
      if (!r) return undefined;
      r.jobId = jobId;
      return e;
    });
    return { id, jobId, status: 'retrying' };
  }

  /** A pending retry that can never finish: its job vanished, or it was claimed but never queued. */
  private async stalePending(entry: DlqEntry): Promise<{ at: string; jobId: string | null } | null> {
    const pending = entry.retries.filter((r) => r.outcome === 'pending');
    if (pending.length !== 1) return null;
    const r = pending[0]!;
    if (r.jobId) return (await this.options.isLive(r.jobId)) ? null : r;
    return this.now() - Date.parse(r.at) > (this.options.staleClaimMs ?? 120_000) ? r : null;
  }

  /**
   * Replays every dead entry of a code, a host or all. Stops at the first QUEUE_FULL (the rest
   * stay dead and can be retried later); entries being retried already are skipped.
   */
  async retryMany(filter: DlqFilter): Promise<DlqBulkRetryResult> {
    const ids = await this.store.ids('code' in filter ? { code: filter.code } : 'host' in filter ? { host: filter.host } : {});
    const result: DlqBulkRetryResult = { matched: ids.length, retried: [], skipped: [] };
    let next = 0;
    const worker = async () => {
      while (next < ids.length && !result.stoppedBy) {
        const id = ids[next++]!;
        try {
          result.retried.push(await this.retry(id));
        } catch (err) {
          if (!isWcagaiError(err)) throw err;
          if (err.code === 'QUEUE_FULL' || err.code === 'REDIS_UNAVAILABLE') {
            result.stoppedBy ??= err.code;
            result.skipped.push({ id, reason: err.code });
          } else result.skipped.push({ id, reason: err.code === 'CONFLICT' ? 'already retrying' : err.code === 'NOT_FOUND' ? 'gone' : err.code });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.options.bulkConcurrency ?? 8) }, worker));
    return result;
  }

  /** A replay of `dlqId` completed: the request works again, so the entry leaves the DLQ. */
  async replayCompleted(dlqId: string): Promise<boolean> {
    const { found } = await this.store.update(dlqId, () => null);
    return found;
  }

  async remove(id: string): Promise<void> {
    if (!DLQ_ID.test(id) || (await this.store.remove([id])) === 0) throw notFound(id);
  }

  /** Removes entries whose last failure is older than `olderThanMs`. */
  async purge(options: { olderThanMs: number }): Promise<{ removed: number }> {
    if (!Number.isFinite(options.olderThanMs) || options.olderThanMs < 0) throw new WcagaiError('USAGE', 'olderThan must be a duration of 0 or more');
    return { removed: await this.store.removeOlderThan(this.now() - options.olderThanMs) };
  }
}
