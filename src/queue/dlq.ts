import type { DlqBulkRetryResult, DlqEntry, DlqFilter, DlqListQuery, DlqOperations, DlqPage, DlqRetryResult, DlqStats, DlqSummary } from '../domain/dlq.js';
import { forEachLimited } from '../domain/concurrency.js';
import { DLQ_ID, hostFilterOf } from '../domain/dlq.js';
import type { Priority } from '../domain/request.js';
import type { ScanOptions } from '../domain/scan.js';
import { isWcagaiError, WcagaiError } from '../errors/catalogue.js';
import type { DlqStore } from './dlq-store.js';
import { newScanId } from './job.js';
import type { SubmitContext } from './producer.js';
import { rethrowAsUnavailable, toRedisError } from './redis.js';

/**
 * How the DLQ queues a replay: ScanProducer.submit (and the link from the scan's batch), or a
 * stand-in in tests. `replayOf` is the original scan's id.
 */
export type ReplaySubmit = (url: string, options: ScanOptions, ctx: SubmitContext & { replayOf: string }) => Promise<{ id: string }>;
/** Whether a replay job is queued or running (a pending retry whose job is neither may be claimed again). */
export type ReplayLiveness = (jobId: string) => Promise<boolean>;
/**
 * Whether a replay job completed (its scan's result is stored as completed). The worker removes
 * the entry when its replay completes; this tells the DLQ so when that update never landed.
 */
export type ReplayCompletion = (jobId: string) => Promise<boolean>;

export interface DeadLetterQueueOptions {
  store: DlqStore;
  submit: ReplaySubmit;
  isLive: ReplayLiveness;
  /**
   * Without it a replay whose completion could not be recorded (Redis did not answer the worker
   * then) leaves its entry retrying until retried again after staleClaimMs.
   */
  isCompleted?: ReplayCompletion;
  /**
   * A pending retry whose job is not queued or running may be claimed again this long after its
   * claim (its process died before queueing it, or the job vanished); within it, the claim's job
   * may still be on its way into the queue.
   */
  staleClaimMs?: number;
  /** Replays queued at once by a bulk retry. */
  bulkConcurrency?: number;
  /**
   * With isCompleted: a retrying entry whose replay was checked (not completed) is not checked
   * again by size and summary for this long (default 10 s); stats checks every retrying entry.
   */
  settleEveryMs?: number;
  now?: () => number;
}

const DEFAULT_LIMIT = 50;
/** Retrying entries size and summary check at most per call (the others on later calls). */
const SETTLE_BATCH = 200;
/** Replay checks running at once while settling. */
const SETTLE_CONCURRENCY = 16;
export const MAX_LIST_LIMIT = 1_000;

function notFound(id: string, replayed?: string): WcagaiError {
  const message = replayed ? `no DLQ entry with id ${id}: its replay, scan ${replayed}, completed` : `no DLQ entry with id ${id}`;
  return new WcagaiError('NOT_FOUND', message, { details: { id, ...(replayed ? { jobId: replayed } : {}) } });
}

/**
 * The dead-letter queue's operations (list, stats, retry, delete, purge) over the Redis store;
 * the admin routes and `wcagai dlq` both use it. Capture lives in dlq-capture.ts.
 */
export class DeadLetterQueue implements DlqOperations {
  private readonly store: DlqStore;
  private readonly now: () => number;
  /** The settling of retrying entries under way, by scope: concurrent figures share one. */
  private readonly settling = new Map<'all' | 'due', Promise<void>>();

  constructor(private readonly options: DeadLetterQueueOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
  }

  async list(query: DlqListQuery = {}): Promise<DlqPage> {
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? DEFAULT_LIMIT)), MAX_LIST_LIMIT);
    const page = await this.store.list({ limit, ...(query.cursor ? { cursor: query.cursor } : {}), ...(query.code ? { code: query.code } : {}), ...(query.host ? { host: hostFilterOf(query.host) } : {}) }).catch(rethrowAsUnavailable);
    // An entry whose replay completed leaves as it is read; the cursor stays valid (it resumes by score).
    const settled = await Promise.all(page.entries.map((e) => this.settled(e).then((s) => s.entry)));
    return { ...page, entries: settled.filter((e): e is DlqEntry => e !== null) };
  }

  async get(id: string): Promise<DlqEntry> {
    const found = DLQ_ID.test(id) ? await this.store.read(id).catch(rethrowAsUnavailable) : null;
    if (!found) throw notFound(id);
    const { entry, completedAs } = await this.settled(found.entry);
    if (!entry) throw notFound(id, completedAs);
    return entry;
  }

  /**
   * The entry as it stands once a completed replay is accounted for: a retrying entry whose
   * pending replay completed (the worker's update removing it never landed) is removed now.
   * Checking is best effort: when it cannot tell, the entry is shown as it is.
   */
  private async settled(entry: DlqEntry): Promise<{ entry: DlqEntry | null; completedAs?: string }> {
    const isCompleted = this.options.isCompleted;
    if (entry.status !== 'retrying' || !isCompleted) return { entry };
    for (const r of entry.retries) {
      if (r.outcome !== 'pending' || !r.jobId || !(await isCompleted(r.jobId).catch(() => false))) continue;
      const jobId = r.jobId;
      // Only while that replay is still the pending one: a newer state (its failure recorded,
      // a delete) stands.
      const { entry: after } = await this.store
        .update(entry.id, (e) => (e.retries.some((x) => x.jobId === jobId && x.outcome === 'pending') ? null : undefined))
        .catch(rethrowAsUnavailable);
      return after ? { entry: after } : { entry: null, completedAs: jobId };
    }
    return { entry };
  }

  /**
   * Totals from the counters, once every retrying entry whose replay completed has left (its
   * worker's removal never landed): exact even for entries nobody reads.
   */
  async stats(): Promise<DlqStats> {
    await this.settleRetrying('all');
    return this.store.stats().catch(rethrowAsUnavailable);
  }

  /** Entries in the DLQ (the `wcagai_dlq_size` gauge), completed replays of due retrying entries settled first. */
  async size(): Promise<number> {
    await this.settleRetrying('due');
    return this.store.size().catch(rethrowAsUnavailable);
  }

  /** The size, oldest entry and last hour's arrivals (/health/detailed, `wcagai top`), settled as size is. */
  async summary(): Promise<DlqSummary> {
    await this.settleRetrying('due');
    return this.store.summary(this.now()).catch(rethrowAsUnavailable);
  }

  /**
   * Removes retrying entries whose replay completed, as a read would, before figures are counted.
   * Only the retrying index is examined, never the whole DLQ: `all` checks every retrying entry
   * (stats); `due` at most SETTLE_BATCH of those not checked within settleEveryMs (size and
   * summary, read at every metrics scrape and every second by the dashboard). Best effort: the
   * figures are counted whatever happens here.
   */
  private settleRetrying(scope: 'all' | 'due'): Promise<void> {
    if (!this.options.isCompleted) return Promise.resolve();
    const running = this.settling.get('all') ?? this.settling.get(scope);
    if (running) return running;
    const settling = this.settleNow(scope)
      .catch(() => undefined)
      .finally(() => this.settling.delete(scope));
    this.settling.set(scope, settling);
    return settling;
  }

  private async settleNow(scope: 'all' | 'due'): Promise<void> {
    await this.store.ensureRetryingIndex();
    const ids = await this.store.retryingIds(scope === 'all' ? null : this.now(), SETTLE_BATCH);
    for (let i = 0; i < ids.length; i += SETTLE_BATCH) {
      const chunk = ids.slice(i, i + SETTLE_BATCH);
      const stored = await this.store.readMany(chunk);
      const checked: Array<{ id: string; rev: string }> = [];
      await forEachLimited(chunk, SETTLE_CONCURRENCY, async (id, j) => {
        const found = stored[j];
        // Removed: its write took it out of the index.
        if (found?.entry.status === 'retrying' && (await this.settled(found.entry)).entry === null) return;
        checked.push({ id, rev: found?.rev ?? '' });
      });
      await this.store.recheck(checked, this.now() + (this.options.settleEveryMs ?? 10_000));
    }
  }

  /**
   * Replays an entry as a new job (same request and request id, cache and dedup skipped, linked
   * back by dlqId). Claiming the entry is one atomic state change, so a concurrent second retry
   * gets CONFLICT instead of starting a second job. The job's id is chosen and recorded with the
   * claim, before queueing: whatever happens after, the claim names the job it may have queued.
   */
  async retry(id: string): Promise<DlqRetryResult> {
    // A retrying entry whose replay completed leaves here (NOT_FOUND): it is not replayed again.
    const current = await this.get(id);
    const stale = current.status === 'retrying' ? await this.stalePending(current) : null;
    const claimAt = new Date(this.now()).toISOString();
    const jobId = newScanId();
    const { entry: claimed } = await this.store
      .update(id, (entry) => {
        const pending = entry.retries.filter((r) => r.outcome === 'pending');
        if (entry.status === 'retrying' && !(stale && pending.length === 1 && pending[0]!.at === stale.at && pending[0]!.jobId === stale.jobId)) {
          const pendingJob = pending[pending.length - 1]?.jobId;
          throw new WcagaiError('CONFLICT', `DLQ entry ${id} is already being retried${pendingJob ? ` as scan ${pendingJob}` : ''}`, { details: { id, ...(pendingJob ? { jobId: pendingJob } : {}) } });
        }
        for (const r of pending) r.outcome = 'failed';
        entry.status = 'retrying';
        entry.retries.push({ at: claimAt, jobId, outcome: 'pending' });
        return entry;
      })
      .catch(rethrowAsUnavailable);
    if (!claimed) throw notFound(id);
    try {
      await this.options.submit(claimed.request.url, claimed.request.options, {
        priority: claimed.request.priority as Priority,
        ...(claimed.requestId ? { requestId: claimed.requestId } : {}),
        ...(claimed.batchId ? { batchId: claimed.batchId } : {}),
        dlqId: id,
        fresh: true,
        id: jobId,
        replayOf: claimed.jobId,
      });
    } catch (err) {
      // An add whose answer was lost may still have queued the job: then the claim stands.
      if (await this.options.isLive(jobId).catch(() => false)) return { id, jobId, status: 'retrying' };
      // Not queued: give the claim back so the entry can be retried now. If Redis does not answer
      // that either, the claim turns stale after staleClaimMs (its job is not live).
      await this.store
        .update(id, (e) => {
          const i = e.retries.findIndex((r) => r.at === claimAt && r.jobId === jobId && r.outcome === 'pending');
          if (i < 0) return undefined;
          e.retries.splice(i, 1);
          if (!e.retries.some((r) => r.outcome === 'pending')) e.status = 'dead';
          return e;
        })
        .catch(() => undefined);
      throw toRedisError(err);
    }
    return { id, jobId, status: 'retrying' };
  }

  /**
   * A pending retry that can never finish: its job is not queued or running and its claim is
   * older than staleClaimMs (the process that claimed it died before queueing, or the job
   * vanished). A claim without a job id (recorded before ids were chosen at claim time) goes by
   * its age alone.
   */
  private async stalePending(entry: DlqEntry): Promise<{ at: string; jobId: string | null } | null> {
    const pending = entry.retries.filter((r) => r.outcome === 'pending');
    if (pending.length !== 1) return null;
    const r = pending[0]!;
    if (this.now() - Date.parse(r.at) <= (this.options.staleClaimMs ?? 120_000)) return null;
    if (r.jobId && (await this.options.isLive(r.jobId).catch(rethrowAsUnavailable))) return null;
    // A replay that completed since the entry was read is not stale: it worked (the next read removes the entry).
    if (r.jobId && this.options.isCompleted && (await this.options.isCompleted(r.jobId).catch(() => false))) return null;
    return r;
  }

  /**
   * Replays every dead entry of a code, a host or all. Stops at the first QUEUE_FULL (the rest
   * stay dead and can be retried later); entries being retried already are skipped.
   */
  async retryMany(filter: DlqFilter): Promise<DlqBulkRetryResult> {
    const ids = await this.store.ids('code' in filter ? { code: filter.code } : 'host' in filter ? { host: hostFilterOf(filter.host) } : {}).catch(rethrowAsUnavailable);
    const result: DlqBulkRetryResult = { matched: ids.length, retried: [], skipped: [] };
    const retryOne = async (id: string) => {
      try {
        result.retried.push(await this.retry(id));
      } catch (caught) {
        // Anything else from a retry is the store failing: stop there and report what was done.
        const err = isWcagaiError(caught) ? caught : (toRedisError(caught) as WcagaiError);
        if (err.code === 'QUEUE_FULL' || err.code === 'REDIS_UNAVAILABLE') {
          result.stoppedBy ??= err.code;
          result.skipped.push({ id, reason: err.code });
        } else result.skipped.push({ id, reason: err.code === 'CONFLICT' ? 'already retrying' : err.code === 'NOT_FOUND' ? 'gone' : err.code });
      }
    };
    await forEachLimited(ids, this.options.bulkConcurrency ?? 8, retryOne, () => result.stoppedBy !== undefined);
    return result;
  }

  /** A replay of `dlqId` completed: the request works again, so the entry leaves the DLQ. */
  async replayCompleted(dlqId: string): Promise<boolean> {
    const { found } = await this.store.update(dlqId, () => null).catch(rethrowAsUnavailable);
    return found;
  }

  async remove(id: string): Promise<void> {
    if (!DLQ_ID.test(id) || (await this.store.remove([id]).catch(rethrowAsUnavailable)) === 0) throw notFound(id);
  }

  /** Removes entries whose last failure is older than `olderThanMs`. */
  async purge(options: { olderThanMs: number }): Promise<{ removed: number }> {
    if (!Number.isFinite(options.olderThanMs) || options.olderThanMs < 0) throw new WcagaiError('USAGE', 'olderThan must be a duration of 0 or more');
    const { removed, retrying } = await this.store.removeOlderThan(this.now() - options.olderThanMs).catch(rethrowAsUnavailable);
    // Entries being retried stay for their replay's outcome, unless it already completed.
    let settled = 0;
    for (const id of this.options.isCompleted ? retrying : []) {
      const stored = await this.store.read(id).catch(rethrowAsUnavailable);
      if (stored && (await this.settled(stored.entry)).entry === null) settled++;
    }
    return { removed: removed + settled };
  }
}
