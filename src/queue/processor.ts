import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { PageResult } from '../domain/scan.js';
import { ERRORS } from '../errors/catalogue.js';
import { textForLog, urlForLog } from '../observability/redact.js';
import type { Scanner } from '../scanner/types.js';
import { attemptLogLine } from './dlq-attempts.js';
import type { ScanHooks } from './hooks.js';
import { jobDataSchema, type ScanJobData, type ScanView } from './job.js';
import type { ResultStore } from './store.js';

/** Error message form shared by processor and readers: "CODE: message". */
export function failedReasonOf(code: string, message: string): string {
  return `${code}: ${message}`;
}

/** Splits a BullMQ failedReason back into code and message. */
export function parseFailedReason(reason: string | undefined): { code: string; message: string } {
  const m = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(reason ?? '');
  return m ? { code: m[1]!, message: m[2]! } : { code: 'INTERNAL', message: reason ?? 'failed' };
}

const STALLED_REASON = /stalled more than allowable limit/i;

/** Code and message of a final failure: "CODE: message", or STALLED for the stall check. */
export function classifyFailure(reason: string | undefined): { code: string; message: string; retryable: boolean } {
  if (reason && STALLED_REASON.test(reason)) return { code: 'STALLED', message: `${reason}: the worker running the scan stopped (crash or kill) too many times`, retryable: true };
  const { code, message } = parseFailedReason(reason);
  const spec = (ERRORS as Record<string, { retryable: boolean } | undefined>)[code];
  return { code, message, retryable: spec?.retryable ?? true };
}

export interface ProcessorDeps {
  scanner: Scanner;
  store: ResultStore;
  logger: Logger;
  /** AI suggestions and CRM sync around storing a successful scan (issue 6); they never fail a scan. */
  hooks?: ScanHooks;
  /** Counts final outcomes fleet-wide (the alerts' error rate). */
  outcomes?: { record(outcome: 'completed' | 'failed'): Promise<void> };
  /** Runs `fn` with the job's request id, trace id and job id in the log context. */
  withContext?<T>(ctx: { requestId?: string; traceId?: string; jobId: string }, fn: () => Promise<T>): Promise<T>;
  /** A DLQ replay (job data has dlqId) completed: its entry leaves the DLQ. */
  onReplayCompleted?(dlqId: string, jobId: string): Promise<unknown>;
  /**
   * Told of every attempt that failed for an unexpected reason (code INTERNAL: a bug, not the
   * page's fault), with the job's ids: the error reporter (SENTRY_DSN).
   */
  onInternalError?(err: unknown, ids: { jobId: string; requestId?: string }): void;
}

/** A job's return value as QueueEvents delivers it (a JSON string or an object); undefined when unreadable. */
export function parseJobOutcome(returnvalue: unknown): Partial<ScanJobOutcome> | undefined {
  let value = returnvalue;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  return value && typeof value === 'object' ? (value as Partial<ScanJobOutcome>) : undefined;
}

/** The job's return value: small, and read fleet-wide from QueueEvents by the API's metrics. */
export interface ScanJobOutcome {
  status: 'completed';
  violations: number;
  timings: PageResult['timings'];
}

function viewOf(job: Job<ScanJobData>, data: ScanJobData, result: PageResult | undefined, startedAt: number): ScanView {
  return {
    id: job.id!,
    status: result?.status === 'ok' ? 'completed' : 'failed',
    url: data.url,
    options: data.options,
    attempts: job.attemptsMade + 1,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date().toISOString(),
    cached: false,
    ...(data.requestId ? { requestId: data.requestId } : {}),
    ...(data.batchId ? { batchId: data.batchId } : {}),
    ...(result?.error ? { error: result.error } : {}),
    ...(result ? { result } : {}),
  };
}

/**
 * The BullMQ processor: scans, stores the final record, and turns page errors into BullMQ's
 * control flow: retryable ones throw (BullMQ retries with backoff), permanent ones throw
 * UnrecoverableError (no retry). The record is written before the last throw, so readers
 * never see a finished job without one.
 */
export function createScanProcessor(deps: ProcessorDeps) {
  const attempt = async (job: Job<ScanJobData>, token?: string, signal?: AbortSignal): Promise<ScanJobOutcome> => {
    const parsed = jobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(failedReasonOf('INVALID_OPTIONS', `job payload not understood (schema ${String((job.data as { v?: unknown })?.v)})`));
    const data = parsed.data;
    // The submitting request's ids: every line of the scan carries them, and the trace id goes on
    // from the request's traceparent (older jobs have none).
    const ids = { ...(data.requestId ? { requestId: data.requestId } : {}), ...(data.traceId ? { traceId: data.traceId } : {}) };
    const run = async () => {
      const log = deps.logger.child({ jobId: job.id, ...ids });
      // The job's URL as every line shows it (credentials masked); the stored record keeps the real one.
      const url = urlForLog(data.url);
      const startedAt = Date.now();
      // A run that stored its result and died before BullMQ recorded the completion (killed
      // worker) leaves the job to be stalled and run again: answer with the stored result instead
      // of scanning and storing a second one.
      const earlier = await deps.store.get(job.id!);
      if (earlier?.status === 'completed' && earlier.result) {
        log.warn({ event: 'scan.recovered', url }, 'result already stored by an earlier run of this scan: not scanning again');
        if (data.dlqId && deps.onReplayCompleted) await deps.onReplayCompleted(data.dlqId, job.id!).catch(() => undefined);
        return { status: 'completed' as const, violations: earlier.result.violations.length, timings: earlier.result.timings };
      }
      log.info({ event: 'scan.start', url, attempt: job.attemptsMade + 1 }, 'scan started');
      /** Shutdown reached its deadline: hand the job back untouched, without spending an attempt. */
      const releaseIfAborted = async () => {
        if (!signal?.aborted || !token) return;
        await job.moveToWait(token);
        log.warn({ event: 'scan.released', url }, 'scan returned to the queue at shutdown');
        throw new WaitingError();
      };
      /**
       * Stores the final record under this attempt's lock. A worker whose lock lapsed (cut off from
       * Redis longer than the lock lasts) no longer owns the job: the stall check has handed it on,
       * and its new owner stores the record. This attempt stores nothing and leaves the job alone
       * (WaitingError: BullMQ neither completes nor fails it).
       */
      const store = async (view: ScanView) => {
        if (await deps.store.putFinal(view, data.cacheKey, token)) return;
        log.warn({ event: 'scan.lock_lost', url }, 'this worker lost the job\'s lock (another worker has it now): result not stored');
        throw new WaitingError();
      };
      const result = await deps.scanner.scan(data.url, data.options, signal ? { signal } : {});
      await releaseIfAborted();
      if (result.status === 'ok') {
        const hookCtx = { jobId: job.id!, log, ...(signal ? { signal } : {}) };
        const final = deps.hooks?.beforeStore ? await deps.hooks.beforeStore(result, hookCtx).catch(() => result) : result;
        // Shutdown cut the AI suggestions short: the scan goes back whole rather than stored without them.
        await releaseIfAborted();
        const view = viewOf(job, data, final, startedAt);
        await store(view);
        log.info({ event: 'scan.completed', url, violations: result.violations.length, ms: result.timings.totalMs, ...(final.degraded ? { degraded: final.degraded } : {}) }, 'scan completed');
        await deps.outcomes?.record('completed').catch(() => undefined);
        const synced = deps.hooks?.afterStore ? await deps.hooks.afterStore(view, hookCtx).catch(() => null) : null;
        if (synced) await store({ ...view, result: synced });
        if (data.dlqId && deps.onReplayCompleted) await deps.onReplayCompleted(data.dlqId, job.id!).catch((err: unknown) => log.warn({ event: 'dlq.resolve.failed', dlqId: data.dlqId, err }, 'replay completed but its DLQ entry could not be removed'));
        return { status: 'completed' as const, violations: result.violations.length, timings: result.timings };
      }
      const error = result.error!;
      const last = !error.retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      log.warn({ event: 'scan.failed', url, code: error.code, retryable: error.retryable, final: last }, textForLog(error.message));
      if (last) await store(viewOf(job, data, result, startedAt));
      if (last) await deps.outcomes?.record('failed').catch(() => undefined);
      const reason = failedReasonOf(error.code, error.message);
      throw error.retryable ? new Error(reason) : new UnrecoverableError(reason);
    };
    return deps.withContext ? deps.withContext({ jobId: job.id!, ...ids }, run) : run();
  };
  // Every failed attempt goes to the job's log, so the DLQ entry can show each attempt's error.
  return async (job: Job<ScanJobData>, token?: string, signal?: AbortSignal): Promise<ScanJobOutcome> => {
    try {
      return await attempt(job, token, signal);
    } catch (err) {
      if (!(err instanceof WaitingError)) {
        const { code, message } = parseFailedReason(err instanceof Error ? err.message : String(err));
        if (code === 'INTERNAL') {
          const requestId = (job.data as { requestId?: unknown })?.requestId;
          deps.onInternalError?.(err, { jobId: job.id!, ...(typeof requestId === 'string' ? { requestId } : {}) });
        }
        await job.log(attemptLogLine({ attempt: job.attemptsMade + 1, code, message, at: new Date().toISOString() })).catch(() => 0);
      }
      throw err;
    }
  };
}
