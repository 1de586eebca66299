import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomId } from '../domain/ids.js';
import { Job, QueueEvents, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { DlqAttempt, DlqEntry } from '../domain/dlq.js';
import type { Priority } from '../domain/request.js';
import { DEFAULT_SCAN_OPTIONS, type ScanOptions } from '../domain/scan.js';
import { textForLog, urlForLog } from '../observability/redact.js';
import { attemptsFromLog } from './dlq-attempts.js';
import { SWEEP_WINDOW_MS, type DlqStore } from './dlq-store.js';
import { PRIORITY, type ScanJobData, type ScanView } from './job.js';
import type { Keys } from './keys.js';
import { classifyFailure } from './processor.js';
import type { RedisClient } from './redis.js';
import type { ResultStore } from './store.js';

/** BullMQ's failedReason for a job failed by the stall check (maxStalledCount exceeded). */

/** A new DLQ id: URL-safe, prefixed. */
export function newDlqId(): string {
  return randomId('dlq_', 12);
}

function priorityOf(value: number | undefined): Priority {
  const found = (Object.entries(PRIORITY) as Array<[Priority, number]>).find(([, n]) => n === value);
  return found?.[0] ?? 'normal';
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** What a failed job tells the DLQ. */
export interface FailedJobFacts {
  jobId: string;
  data: Partial<ScanJobData>;
  priority: number | undefined;
  attemptsMade: number;
  failedReason: string | undefined;
  finishedOn: number | undefined;
  processedOn: number | undefined;
  timestamp: number;
  workerId: string | undefined;
  logLines: string[];
}

/** Every attempt of the job: those it logged, plus the final one when it never got to log it (stall). */
export function attemptsOf(facts: FailedJobFacts, failure: { code: string; message: string }): DlqAttempt[] {
  const attempts = attemptsFromLog(facts.jobId, facts.logLines);
  const at = new Date(facts.finishedOn ?? Date.now()).toISOString();
  const last = attempts[attempts.length - 1];
  if (!last || failure.code === 'STALLED' || last.attempt < facts.attemptsMade) {
    attempts.push({ attempt: Math.max(facts.attemptsMade, (last?.attempt ?? 0) + 1), jobId: facts.jobId, code: failure.code, message: failure.message, at });
  }
  return attempts;
}

/** A new entry for a job that failed for good. */
export function entryFromJob(id: string, facts: FailedJobFacts): DlqEntry {
  const failure = classifyFailure(facts.failedReason);
  const attempts = attemptsOf(facts, failure);
  const url = String(facts.data.url ?? '');
  const at = new Date(facts.finishedOn ?? Date.now()).toISOString();
  return {
    id,
    jobId: facts.jobId,
    request: { url, options: (facts.data.options as ScanOptions | undefined) ?? DEFAULT_SCAN_OPTIONS, priority: priorityOf(facts.priority) },
    host: hostOf(url),
    code: failure.code,
    message: failure.message,
    retryable: failure.retryable,
    attemptsMade: attempts.length,
    attempts,
    firstFailedAt: attempts[0]?.at || at,
    lastFailedAt: at,
    ...(facts.workerId ? { workerId: facts.workerId } : {}),
    ...(facts.data.requestId ? { requestId: facts.data.requestId } : {}),
    ...(facts.data.batchId ? { batchId: facts.data.batchId } : {}),
    retries: [],
    status: 'dead',
  };
}

/** The entry after its replay `facts.jobId` failed too: back to dead, the new attempts appended. */
export function entryAfterFailedReplay(entry: DlqEntry, facts: FailedJobFacts): DlqEntry {
  const failure = classifyFailure(facts.failedReason);
  const attempts = attemptsOf(facts, failure);
  const at = new Date(facts.finishedOn ?? Date.now()).toISOString();
  const retry = entry.retries.find((r) => r.jobId === facts.jobId) ?? [...entry.retries].reverse().find((r) => r.outcome === 'pending' && r.jobId === null);
  if (retry) {
    retry.jobId = facts.jobId;
    retry.outcome = 'failed';
  } else entry.retries.push({ at, jobId: facts.jobId, outcome: 'failed' });
  const pending = entry.retries.some((r) => r.outcome === 'pending');
  return {
    ...entry,
    code: failure.code,
    message: failure.message,
    retryable: failure.retryable,
    attempts: [...entry.attempts, ...attempts],
    attemptsMade: entry.attemptsMade + attempts.length,
    lastFailedAt: at,
    ...(facts.workerId ? { workerId: facts.workerId } : {}),
    status: pending ? 'retrying' : 'dead',
  };
}

/** Tries of one capture (see captureRetrying). */
const CAPTURE_TRIES = 8;

/** How often a running capture sweeps for failures no event brought. */
const DEFAULT_SWEEP_EVERY_MS = 5 * 60_000;

export interface DlqCaptureOptions {
  /** Dedicated, blocking-capable connection (QueueEvents reads the event stream with XREAD BLOCK). */
  connection: RedisClient;
  /** The scan queue (job look-ups). */
  queue: Queue;
  keys: Keys;
  store: DlqStore;
  results: ResultStore;
  logger: Logger;
  /** Same as a listener added with `onCapture`. */
  onCapture?: CaptureListener;
  /** On start, look at this many of the most recent failed jobs for ones missed while no process ran (0: none). */
  sweep?: number;
  /**
   * With `sweep`, look again this often (default 5 minutes; 0: start-up only): a failure whose
   * event no process read (every capture cut off from Redis while the event stream was trimmed
   * past it) is still caught while the process runs.
   */
  sweepEveryMs?: number;
}

/**
 * Told of every capture this process observes, once per failed job: `writtenHere` is true in the
 * one process (fleet-wide) whose write made or updated the entry, false in the others.
 */
export type CaptureListener = (entry: DlqEntry, info: { writtenHere: boolean }) => void;

export type CaptureOutcome = { outcome: 'created' | 'updated'; entry: DlqEntry } | { outcome: 'duplicate' | 'missing' | 'completed' };

/**
 * Moves every scan that failed for good into the DLQ. It watches the queue's `failed` events
 * (BullMQ emits them only for final failures: attempts exhausted, UnrecoverableError, stall
 * limit), so a job failed by another worker's stall check is caught too. Every process runs one;
 * the write is keyed by job id, so one failure makes one entry however many observe it.
 */
export class DlqCapture {
  /** The queue's event stream; the API's waiter, metrics and feed listen on it too (one per process). */
  readonly events: QueueEvents;
  private readonly running = new Set<Promise<unknown>>();
  private readonly listeners = new Set<CaptureListener>();
  private closed = false;
  /** Aborted by close(): a capture waiting to try again gives up at once. */
  private readonly stopping = new AbortController();
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping = false;

  constructor(private readonly options: DlqCaptureOptions) {
    const { keys, connection, logger } = options;
    // One listener per capture waiting to try again: a burst of failures during an outage has many.
    setMaxListeners(0, this.stopping.signal);
    this.events = new QueueEvents(keys.queueName, { connection, prefix: keys.bullPrefix });
    this.events.on('failed', ({ jobId, failedReason }) => this.track(jobId, failedReason));
    this.events.on('error', (err) => logger.debug({ event: 'dlq.capture.error', err: err.message }, 'DLQ capture event stream error'));
    if (options.onCapture) this.listeners.add(options.onCapture);
  }

  /** Adds a capture listener (metrics, for instance); returns its remover. */
  onCapture(listener: CaptureListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(entry: DlqEntry, writtenHere: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(entry, { writtenHere });
      } catch (err) {
        this.options.logger.warn({ event: 'dlq.listener.failed', err }, 'a DLQ capture listener threw');
      }
    }
  }

  /** Another process wrote the capture of `jobId`: tell the listeners what it wrote. */
  private async observed(dlqId: string | null): Promise<CaptureOutcome> {
    if (dlqId && this.listeners.size) {
      const stored = await this.options.store.read(dlqId);
      if (stored) this.tell(stored.entry, false);
    }
    return { outcome: 'duplicate' };
  }

  private track(jobId: string, reason?: string): void {
    if (this.closed) return;
    const p = this.captureRetrying(jobId, reason).catch((err: unknown) => {
      this.options.logger.error({ event: 'dlq.capture.failed', jobId, err }, 'could not capture a failed scan into the DLQ');
    });
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /**
   * Captures a failure seen on the event stream, trying again with backoff (0.5 s doubling to 8 s,
   * about 30 s in all) while Redis does not answer. After a Redis restart the event stream (which
   * reconnects and resumes by itself) can deliver failures before the fail-fast connection the
   * capture reads and writes through is back: a first try that failed then would leave the
   * failure out of the DLQ until the next start-up sweep. Capture is idempotent, so a try that
   * did write before its answer was lost is harmless to repeat.
   */
  private async captureRetrying(jobId: string, reason?: string): Promise<CaptureOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.capture(jobId, reason);
      } catch (err) {
        if (this.closed || attempt >= CAPTURE_TRIES) throw err;
        this.options.logger.warn({ event: 'dlq.capture.retry', jobId, attempt, err: (err as Error)?.message }, 'DLQ capture failed; trying again');
        await sleep(Math.min(500 * 2 ** (attempt - 1), 8_000), undefined, { signal: this.stopping.signal }).catch(() => undefined);
        if (this.closed) throw err;
      }
    }
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
    const limit = this.options.sweep ?? 0;
    if (!limit) return;
    await this.sweep(limit).catch((err: unknown) => this.options.logger.warn({ event: 'dlq.sweep.failed', err }, 'DLQ start-up sweep failed'));
    const every = this.options.sweepEveryMs ?? DEFAULT_SWEEP_EVERY_MS;
    if (every > 0 && !this.closed) {
      this.sweepTimer = setInterval(() => this.sweepInBackground(limit), every);
      this.sweepTimer.unref();
    }
  }

  /** One periodic sweep at a time, awaited by close(). */
  private sweepInBackground(limit: number): void {
    if (this.closed || this.sweeping) return;
    this.sweeping = true;
    const p = this.sweep(limit)
      .then((n) => {
        if (n > 0) this.options.logger.warn({ event: 'dlq.sweep.captured', captured: n }, `DLQ sweep captured ${n} failed scan(s) no event had brought`);
      })
      .catch((err: unknown) => this.options.logger.debug({ event: 'dlq.sweep.failed', err }, 'DLQ sweep failed'))
      .finally(() => {
        this.sweeping = false;
      });
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /**
   * Captures the most recent failed jobs that have no DLQ record yet (events missed while no
   * process ran), among those failed within SWEEP_WINDOW_MS: an older one may have outlived the
   * marker that says it was captured.
   */
  async sweep(limit: number): Promise<number> {
    const since = Date.now() - SWEEP_WINDOW_MS;
    const ids = await this.options.store.redis.zrevrangebyscore(this.options.queue.keys.failed!, '+inf', since, 'LIMIT', 0, limit);
    if (ids.length === 0) return 0;
    const markers = await this.options.store.redis.mget(ids.map((id) => this.options.keys.dlq.job(id)));
    let n = 0;
    for (const [i, id] of ids.entries()) {
      if (markers[i]) continue;
      const result = await this.capture(id);
      if (result.outcome === 'created' || result.outcome === 'updated') n++;
    }
    return n;
  }

  /** Captures one failed job (idempotent). */
  async capture(jobId: string, eventReason?: string): Promise<CaptureOutcome> {
    const { store, queue, logger } = this.options;
    const seen = await store.capturedAs(jobId);
    if (seen) return this.observed(seen);
    const job = await Job.fromId<ScanJobData>(queue, jobId);
    if (!job) {
      logger.warn({ event: 'dlq.capture.missing', jobId }, 'failed job vanished before the DLQ could read it');
      return { outcome: 'missing' };
    }
    // A worker killed after storing the scan's result but before BullMQ recorded the completion
    // leaves a job that stalls; when the stall limit fails it, the scan has in fact completed:
    // its stored result stands and there is nothing to replay. The job goes back to the queue,
    // where the processor finds the stored result and completes it without scanning again, so
    // BullMQ's state agrees with the record (one process wins the move; the others see it done).
    const stored = await this.options.results.get(jobId);
    if (stored?.status === 'completed' && stored.result) {
      const moved = await job.retry('failed').then(() => true, () => false);
      const reason = job.failedReason || eventReason;
      logger.info({ event: 'dlq.capture.completed', jobId, reason: reason && textForLog(reason), moved }, 'failed job had completed (its result is stored): not a dead letter; handed back to be marked completed');
      return { outcome: 'completed' };
    }
    const { logs } = await queue.getJobLogs(jobId, 0, -1, true);
    const facts: FailedJobFacts = {
      jobId,
      data: (job.data ?? {}) as Partial<ScanJobData>,
      priority: job.opts.priority,
      attemptsMade: job.attemptsMade,
      failedReason: job.failedReason || eventReason,
      finishedOn: job.finishedOn,
      processedOn: job.processedOn,
      timestamp: job.timestamp,
      workerId: job.processedBy,
      logLines: logs,
    };
    await this.finalRecord(facts);

    const dlqId = facts.data.dlqId;
    if (dlqId) {
      for (let attempt = 0; attempt < 50; attempt++) {
        const stored = await store.read(dlqId);
        if (!stored) break; // deleted meanwhile: it failed for good again, so it gets a new entry
        const next = entryAfterFailedReplay(structuredClone(stored.entry), facts);
        const written = await store.write(dlqId, next, stored.rev, jobId);
        if (written.status === 'dup') return this.observed(written.existing);
        if (written.status === 'ok') {
          logger.warn({ event: 'dlq.replay.failed', dlqId, jobId, code: next.code }, `DLQ replay failed again: ${next.code}`);
          this.tell(next, true);
          return { outcome: 'updated', entry: next };
        }
      }
    }
    const entry = entryFromJob(newDlqId(), facts);
    const written = await store.write(entry.id, entry, '', jobId);
    if (written.status !== 'ok') return this.observed(written.status === 'dup' ? written.existing : null);
    logger.warn({ event: 'dlq.captured', dlqId: entry.id, jobId, code: entry.code, url: urlForLog(entry.request.url), attempts: entry.attemptsMade }, `scan moved to the DLQ: ${entry.code}`);
    this.tell(entry, true);
    return { outcome: 'created', entry };
  }

  /**
   * A job failed without a final record (stall limit, payload refused): write one so
   * GET /api/scans/:id says failed, which also clears the request's in-flight marker.
   */
  private async finalRecord(facts: FailedJobFacts): Promise<void> {
    const { results } = this.options;
    if (await results.get(facts.jobId)) return;
    const failure = classifyFailure(facts.failedReason);
    const iso = (t?: number) => (t ? new Date(t).toISOString() : null);
    const view: ScanView = {
      id: facts.jobId,
      status: 'failed',
      url: String(facts.data.url ?? ''),
      options: (facts.data.options as ScanOptions | undefined) ?? DEFAULT_SCAN_OPTIONS,
      attempts: facts.attemptsMade,
      createdAt: iso(facts.timestamp),
      startedAt: iso(facts.processedOn),
      finishedAt: iso(facts.finishedOn),
      cached: false,
      ...(facts.data.requestId ? { requestId: facts.data.requestId } : {}),
      ...(facts.data.batchId ? { batchId: facts.data.batchId } : {}),
      error: failure,
    };
    if (facts.data.cacheKey) await results.putFinal(view, facts.data.cacheKey);
  }

  /** Stops listening and waits for the captures under way. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.stopping.abort();
    await this.events.close().catch(() => undefined);
    await Promise.allSettled([...this.running]);
    this.options.connection.disconnect();
  }
}
