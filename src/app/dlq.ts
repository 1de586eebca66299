import { Job, Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { DlqOperations } from '../domain/dlq.js';
import { adminDlqRoutes, dlqHealthSection } from '../http/routes/admin-dlq.js';
import type { HealthSection } from '../http/routes/health.js';
import { DeadLetterQueue } from '../queue/dlq.js';
import { DlqCapture, type CaptureListener } from '../queue/dlq-capture.js';
import { RemoteDlq } from '../queue/dlq-remote.js';
import { startDlqRetention, type DlqRetention } from '../queue/dlq-retention.js';
import { DlqStore } from '../queue/dlq-store.js';
import { keysFor, type Keys } from '../queue/keys.js';
import { producerOf, type ScanProducer } from '../queue/producer.js';
import { producerConnection, redisStartError, redisTargetOf, waitReady, workerConnection, type RedisClient } from '../queue/redis.js';
import type { ResultStore } from '../queue/store.js';
import { loadDotEnv } from '../config/dotenv.js';

/** The DLQ over a service's queue: operations, and whether a replay job is still queued or running, or completed. */
export function deadLetterQueueOf(redis: RedisClient, queue: Queue, keys: Keys, producer: ScanProducer, results: ResultStore): DeadLetterQueue {
  return new DeadLetterQueue({
    store: new DlqStore(redis, keys),
    submit: async (url, options, { replayOf, ...ctx }) => {
      // The scan's batch counts the replay in its place. Linked before the add (the replay's id is
      // chosen with the claim), so an add whose answer is lost, but that did queue the job, is linked
      // too; a replay that never got queued is replaced by the next retry's link. A link lost to a
      // Redis failure leaves the batch showing the failure.
      if (ctx.batchId && ctx.id) await results.linkReplay(ctx.batchId, replayOf, ctx.id).catch(() => undefined);
      return producer.submit(url, options, ctx);
    },
    isLive: async (jobId) => {
      const job = await Job.fromId(queue, jobId);
      if (!job) return false;
      const state = await job.getState();
      return state !== 'failed' && state !== 'completed' && state !== 'unknown';
    },
    // The stored record first: it outlives the completed job (removed after an hour), and a worker
    // killed after storing it completes the job without scanning again.
    isCompleted: async (jobId) => (await results.get(jobId))?.status === 'completed' || (await queue.getJobState(jobId)) === 'completed',
  });
}

export interface DlqRuntimeOptions {
  redis: RedisClient;
  queue: Queue;
  keys: Keys;
  store: ResultStore;
  producer: ScanProducer;
  /** The process runs scan workers: it also runs the retention job. */
  runsWorkers: boolean;
  onCapture?: CaptureListener;
}

/** The DLQ parts of one service process, closed by `close` after the scan worker has stopped. */
export interface DlqRuntime {
  dlq: DeadLetterQueue;
  capture: DlqCapture;
  retention: DlqRetention;
  healthSection: HealthSection;
  routes: (app: FastifyInstance) => void;
  /**
   * Listens to captures this process observes (every failure, once each; `writtenHere` marks the
   * one process fleet-wide that wrote it). Returns the remover.
   */
  onCapture(listener: CaptureListener): () => void;
  close(): Promise<void>;
}

/** Starts capture (every process), the retention scheduler (its worker where scans run) and builds the routes. */
export async function startDlqRuntime(config: Config, logger: Logger, options: DlqRuntimeOptions): Promise<DlqRuntime> {
  const { redis, queue, keys } = options;
  const dlq = deadLetterQueueOf(redis, queue, keys, options.producer, options.store);
  const target = redisTargetOf(config);
  const captureConnection = workerConnection(target);
  captureConnection.on('error', (err) => logger.debug({ event: 'redis.error', err: err.message }, 'DLQ capture redis error'));
  const capture = new DlqCapture({
    connection: captureConnection,
    queue,
    keys,
    store: new DlqStore(redis, keys),
    results: options.store,
    logger,
    sweep: 200,
    ...(options.onCapture ? { onCapture: options.onCapture } : {}),
  });
  let retention: DlqRetention | null = null;
  try {
    await capture.ready();
    const maintenance = options.runsWorkers ? workerConnection(target) : null;
    maintenance?.on('error', (err) => logger.debug({ event: 'redis.error', err: err.message }, 'maintenance redis error'));
    retention = await startDlqRetention({ connection: redis, workerConnection: maintenance, keys, dlq, retentionMs: config.DLQ_RETENTION, logger });
  } catch (err) {
    await capture.close();
    throw err;
  }
  const started = retention;
  return {
    dlq,
    capture,
    retention: started,
    healthSection: dlqHealthSection(() => dlq.summary()),
    routes: adminDlqRoutes(dlq),
    onCapture: (listener) => capture.onCapture(listener),
    async close() {
      await Promise.allSettled([capture.close(), started.close()]);
    },
  };
}

/**
 * The DLQ for `wcagai dlq`: through a server's admin API when a URL is given, else straight
 * from Redis (REDIS_URL or its Sentinel/Cluster settings, QUEUE_PREFIX), so it works with no server running.
 */
export async function openDlq(flags: { url?: string; token?: string }): Promise<{ dlq: DlqOperations; close(): Promise<void> }> {
  loadDotEnv();
  const config = loadConfig(process.env);
  const url = flags.url ?? config.WCAGAI_URL;
  if (url) {
    const token = flags.token ?? config.ADMIN_TOKEN;
    return { dlq: new RemoteDlq({ url, ...(token ? { token } : {}) }), close: async () => undefined };
  }
  const keys = keysFor(config.QUEUE_PREFIX);
  const target = redisTargetOf(config);
  const redis = producerConnection(target, { commandTimeout: 30_000 });
  redis.on('error', () => undefined);
  try {
    await waitReady(redis, 5_000, { firstError: true });
  } catch (err) {
    redis.disconnect();
    throw redisStartError(target, err, 'set REDIS_URL, or --url to use a server');
  }
  const queue = new Queue(keys.queueName, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', () => undefined);
  const { store: results, producer } = producerOf(queue, redis, keys, config);
  return {
    dlq: deadLetterQueueOf(redis, queue, keys, producer, results),
    async close() {
      await queue.close().catch(() => undefined);
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
