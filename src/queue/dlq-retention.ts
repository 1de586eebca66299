import { Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { DeadLetterQueue } from './dlq.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export const DLQ_RETENTION_JOB = 'dlq-retention';

/** How often retention runs: a quarter of the retention, between 1 s and 1 h. */
export function retentionEvery(retentionMs: number): number {
  return Math.min(3_600_000, Math.max(1_000, Math.floor(retentionMs / 4)));
}

export interface DlqRetentionOptions {
  /** The service's ordinary connection (for the maintenance queue). */
  connection: RedisClient;
  /** A dedicated blocking connection for the maintenance worker; null in processes that run no worker. */
  workerConnection: RedisClient | null;
  keys: Keys;
  dlq: DeadLetterQueue;
  retentionMs: number;
  logger: Logger;
}

export interface DlqRetention {
  /** Runs the purge now (what the scheduled job does). */
  runOnce(olderThanMs?: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Retention as a BullMQ job scheduler on a small maintenance queue: every process upserts the
 * same scheduler (idempotent), and whichever worker process takes the job purges entries older
 * than DLQ_RETENTION. No timer in any one process, so it runs once per period fleet-wide.
 */
export async function startDlqRetention(options: DlqRetentionOptions): Promise<DlqRetention> {
  const { keys, dlq, retentionMs, logger } = options;
  const queue = new Queue(keys.maintenanceQueueName, { connection: options.connection, prefix: keys.bullPrefix });
  queue.on('error', () => undefined);
  const runOnce = async (olderThanMs = retentionMs) => {
    const { removed } = await dlq.purge({ olderThanMs });
    if (removed > 0) logger.info({ event: 'dlq.retention', removed, retentionMs: olderThanMs }, `DLQ retention removed ${removed} entries`);
    return removed;
  };
  await queue.upsertJobScheduler(
    DLQ_RETENTION_JOB,
    { every: retentionEvery(retentionMs) },
    // The retention travels in the job: whichever process runs it applies the latest configuration.
    { name: DLQ_RETENTION_JOB, data: { olderThanMs: retentionMs }, opts: { removeOnComplete: { count: 10 }, removeOnFail: { count: 50 } } },
  );
  let worker: Worker | null = null;
  if (options.workerConnection) {
    worker = new Worker(
      keys.maintenanceQueueName,
      async (job) => {
        if (job.name !== DLQ_RETENTION_JOB) return undefined;
        const olderThanMs = Number((job.data as { olderThanMs?: unknown }).olderThanMs);
        return { removed: await runOnce(Number.isFinite(olderThanMs) && olderThanMs > 0 ? olderThanMs : retentionMs) };
      },
      { connection: options.workerConnection, prefix: keys.bullPrefix, concurrency: 1 },
    );
    worker.on('error', (err) => logger.debug({ event: 'maintenance.error', err: err.message }, 'maintenance worker error'));
  }
  return {
    runOnce,
    async close() {
      await Promise.allSettled([worker?.close(), queue.close()]);
      options.workerConnection?.disconnect();
    },
  };
}
