import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { ErrorReporter } from '../observability/sentry.js';
import type { Scanner } from '../scanner/types.js';
import { startHeartbeat } from './heartbeat.js';
import type { ScanJobData } from './job.js';
import type { Keys } from './keys.js';
import { createScanProcessor, type ProcessorDeps, type ScanJobOutcome } from './processor.js';
import type { RedisClient } from './redis.js';
import type { ResultStore } from './store.js';

export interface ScanWorkerOptions {
  connection: RedisClient;
  keys: Keys;
  scanner: Scanner;
  store: ResultStore;
  logger: Logger;
  concurrency: number;
  /** The longest a scan may run; the job lock is longer, so a running scan is never judged stalled. */
  scanTimeoutMs: number;
  withContext?: ProcessorDeps['withContext'];
  onReplayCompleted?: ProcessorDeps['onReplayCompleted'];
  /** AI suggestions / HubSpot sync, and the fleet-wide outcome counter (issue 6). */
  hooks?: ProcessorDeps['hooks'];
  outcomes?: ProcessorDeps['outcomes'];
  /** BullMQ lock duration and stalled-check interval; derived from scanTimeoutMs when unset. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  heartbeatMs?: number;
  /** Extra figures for the heartbeat (breakers, for instance). */
  heartbeatExtra?: () => Record<string, unknown>;
  /** Where unexpected failures go (SENTRY_DSN): scans failed with INTERNAL, and the worker's own errors. */
  reporter?: ErrorReporter;
}

export interface ScanWorker {
  id: string;
  worker: Worker<ScanJobData, ScanJobOutcome>;
  /** Stops taking jobs, lets active ones finish until `deadlineMs`, then returns the rest to the queue. */
  close(deadlineMs: number): Promise<{ released: boolean }>;
}

/** A BullMQ worker running scans on the warm pool, with a heartbeat in Redis. */
export function startScanWorker(options: ScanWorkerOptions): ScanWorker {
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const { scanner, logger } = options;
  const lockDuration = options.lockDurationMs ?? Math.max(30_000, options.scanTimeoutMs + 15_000);
  const processScan = createScanProcessor({
    scanner,
    store: options.store,
    logger,
    ...(options.withContext ? { withContext: options.withContext } : {}),
    ...(options.onReplayCompleted ? { onReplayCompleted: options.onReplayCompleted } : {}),
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.outcomes ? { outcomes: options.outcomes } : {}),
    ...(options.reporter ? { onInternalError: (err: unknown, ids: { jobId: string; requestId?: string }) => options.reporter!.capture(err, ids) } : {}),
  });
  // Counted around the processor itself: a job released at shutdown or whose lock moved to another
  // worker fires neither `completed` nor `failed`, and event counting drifted on such jobs.
  let active = 0;
  const worker = new Worker<ScanJobData, ScanJobOutcome>(
    options.keys.queueName,
    async (job, token, signal) => {
      active++;
      try {
        return await processScan(job, token, signal);
      } finally {
        active--;
      }
    },
    {
      connection: options.connection,
      prefix: options.keys.bullPrefix,
      concurrency: options.concurrency,
      lockDuration,
      stalledInterval: options.stalledIntervalMs ?? Math.min(30_000, lockDuration),
      // Recorded on the job as processedBy: the DLQ entry names the worker of the last attempt.
      name: id,
      maxStalledCount: 1,
      autorun: true,
    },
  );
  worker.on('error', (err) => {
    logger.error({ event: 'worker.error', err }, 'worker error');
    options.reporter?.capture(err, { tags: { worker_id: id } });
  });
  const heartbeat = startHeartbeat(
    options.connection,
    options.keys,
    id,
    () => {
      const s = scanner.stats();
      return { concurrency: options.concurrency, active, scansDone: s.scansDone, browserRestarts: s.browserRestarts, browserPid: s.browserPid, ...(options.heartbeatExtra?.() ?? {}) };
    },
    options.heartbeatMs ?? 5_000,
  );
  logger.info({ event: 'worker.start', workerId: id, concurrency: options.concurrency }, 'worker started');
  let closing: Promise<{ released: boolean }> | null = null;

  return {
    id,
    worker,
    async close(deadlineMs: number) {
      // BullMQ stops fetching at once; the active scans run on until they finish or the deadline.
      closing ??= (async () => {
        let closed = false;
        void worker.close().then(
          () => (closed = true),
          () => (closed = true),
        );
        // With Redis unreachable BullMQ's close never settles (its connections wait to reconnect):
        // once no scan runs here there is nothing left to wait for.
        const done = () => closed || (active === 0 && options.connection.status !== 'ready');
        const settle = async (ms: number) => {
          const until = Date.now() + ms;
          while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
          return done();
        };
        const released = !(await settle(deadlineMs));
        if (released) {
          logger.warn({ event: 'worker.release', workerId: id }, 'shutdown deadline reached: returning active scans to the queue');
          worker.cancelAllJobs('shutdown');
          await settle(5_000);
        }
        await heartbeat.stop();
        return { released };
      })();
      return closing;
    },
  };
}
