import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { DlqEntry } from '../domain/dlq.js';
import { toolInfo } from '../domain/version.js';
import { scanEventsToMetrics } from '../http/plugins/metrics.js';
import { buildHealthServer, buildServer } from '../http/server.js';
import { createMetrics, type Metrics } from '../observability/metrics.js';
import { initErrorReporting, noopReporter, type ErrorReporter } from '../observability/sentry.js';
import { runWithContext } from '../observability/context.js';
import type { DeadLetterQueue } from '../queue/dlq.js';
import { startApiHeartbeat, type Heartbeat } from '../queue/heartbeat.js';
import { keysFor, type Keys } from '../queue/keys.js';
import { producerOf, type ScanProducer } from '../queue/producer.js';
import { abandonConnection, producerConnection, redisStartError, redisTargetOf, settleWithin, toRedisError, waitReady, workerConnection, type RedisClient } from '../queue/redis.js';
import { gateRedis, type RedisGate } from '../queue/redis-gate.js';
import { ResultStore } from '../queue/store.js';
import { CompletionWaiter } from '../queue/waiter.js';
import { startScanWorker, type ScanWorker } from '../queue/worker.js';
import { createScanner } from '../scanner/engine.js';
import type { Scanner } from '../scanner/types.js';
import { startDlqRuntime, type DlqRuntime } from './dlq.js';
import { startEventsRuntime } from './events.js';
import { bindIntegrationGauges, startIntegrations, type Integrations } from './integrations.js';
import { policyOf, scannerConfigOf } from './scanner-config.js';

export interface ServiceOptions {
  /** Serve the HTTP API. */
  api: boolean;
  /** Scan concurrency of the worker in this process; 0 runs no worker. */
  workerConcurrency: number;
  env: Record<string, string | undefined>;
  /** Without the API: build the health endpoints alone as `app` (a worker's WORKER_HEALTH_PORT). */
  healthServer?: boolean;
  /** Told of each DLQ capture this process observes; `writtenHere` is true in the one process that wrote it. */
  onDlqCapture?: (entry: DlqEntry, info: { writtenHere: boolean }) => void;
}

/** A running API and/or worker with everything it owns, closed in order by `close`. */
export interface Service {
  config: Config;
  keys: Keys;
  app: FastifyInstance | null;
  worker: ScanWorker | null;
  scanner: Scanner | null;
  queue: Queue;
  redis: RedisClient;
  /** Adds scans with cache, dedup and admission control (what POST /api/scans uses). */
  producer: ScanProducer;
  /** The dead-letter queue (its size() feeds wcagai_dlq_size). */
  dlq: DeadLetterQueue;
  /** Unexpected errors go here (SENTRY_DSN; a no-op without it): the process handlers' too. */
  reporter: ErrorReporter;
  /** Ordered shutdown: stop accepting, finish in-flight requests, drain or release scans, close browser and Redis. */
  close(deadlineMs?: number): Promise<{ released: boolean }>;
}

/** How long a starting process waits for Redis before it gives up. */
const REDIS_START_TIMEOUT_MS = 10_000;

/** Composition root of `serve` and `worker`: builds every dependency from the configuration. */
export async function startService(config: Config, logger: Logger, options: ServiceOptions): Promise<Service> {
  const keys = keysFor(config.QUEUE_PREFIX);
  const target = redisTargetOf(config);
  const redis = producerConnection(target);
  redis.on('error', (err) => logger.debug({ event: 'redis.error', err: err.message }, 'redis connection error'));
  const queue = new Queue(keys.queueName, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', () => undefined);
  const { store, producer } = producerOf(queue, redis, keys, config);
  const owned: Array<() => Promise<unknown>> = [];

  let app: FastifyInstance | null = null;
  let waiter: CompletionWaiter | null = null;
  let scanner: Scanner | null = null;
  let worker: ScanWorker | null = null;
  let workerRedis: RedisClient | null = null;
  let dlq: DlqRuntime | null = null;
  let metrics: Metrics | null = null;
  let reporter: ErrorReporter | null = null;
  let integrations: Integrations | null = null;
  let gate: RedisGate | null = null;
  let apiHeartbeat: Heartbeat | null = null;
  // The gate's PINGs go on a connection of their own: not behind a slow command of the producer's.
  const gateProbe = quietConnection(producerConnection(target), logger);
  let breakerChannel: RedisClient | null = null;
  try {
    await Promise.all([waitReady(redis, REDIS_START_TIMEOUT_MS), waitReady(gateProbe, REDIS_START_TIMEOUT_MS)]).catch(async (err: unknown) => {
      await abandonConnection(redis, queue);
      // The operator's most likely start-up failure: one line naming where Redis was looked for, and why.
      throw redisStartError(target, err, 'check REDIS_URL, or REDIS_SENTINELS/REDIS_CLUSTER_NODES');
    });
    // A Redis that hangs (stopped, partitioned) fails the producer's commands at once, as one that
    // refuses connections does: the API answers 503 within a second, not after command timeouts.
    gate = gateRedis(redis, {
      probe: gateProbe,
      deadlineMs: config.REDIS_PING_TIMEOUT,
      onChange: (open, reason) =>
        open
          ? logger.info({ event: 'redis.answering' }, `Redis answers again (${reason} before)`)
          : logger.warn({ event: 'redis.unanswered', reason }, `Redis does not answer (${reason}): its commands fail at once until a PING is answered`),
    });
    reporter = await initErrorReporting({ dsn: config.SENTRY_DSN, release: `wcagai@${toolInfo().version}`, environment: config.NODE_ENV, logger });
    // Capture runs in every process; retention's worker only where scans run.
    dlq = await startDlqRuntime(config, logger, { redis, queue, keys, store, producer, runsWorkers: options.workerConcurrency > 0, ...(options.onDlqCapture ? { onCapture: options.onDlqCapture } : {}) });
    const dlqOps = dlq.dlq;
    // External clients, breakers (fleet-wide control) and alerts: every process, API or worker.
    const subscriber = (breakerChannel = quietConnection(workerConnection(target), logger));
    const integ = (integrations = await startIntegrations(config, logger, { redis, subscriber, keys, capacity: () => producer.capacity(), dlqFigures: () => dlqOps.summary(), role: options.workerConcurrency > 0 ? 'worker' : 'api' }));
    const healthSections = [dlq.healthSection, integ.healthSection];
    if (options.workerConcurrency > 0) {
      scanner = await createScanner(scannerConfigOf(config, options.workerConcurrency, logger, options.env));
      workerRedis = workerConnection(target);
      workerRedis.on('error', (err) => logger.debug({ event: 'redis.error', err: err.message }, 'worker redis error'));
      const workerStore = new ResultStore(workerRedis, keys, config.RESULT_TTL, config.CACHE_TTL);
      worker = startScanWorker({
        connection: workerRedis,
        keys,
        scanner,
        store: workerStore,
        logger,
        concurrency: options.workerConcurrency,
        scanTimeoutMs: config.SCAN_TIMEOUT,
        withContext: (ctx, fn) => runWithContext(ctx, fn),
        onReplayCompleted: (dlqId) => dlqOps.replayCompleted(dlqId),
        hooks: integ.hooks,
        outcomes: integ.outcomes,
        heartbeatExtra: integ.heartbeatExtra,
        reporter,
        ...(config.WORKER_LOCK_DURATION ? { lockDurationMs: config.WORKER_LOCK_DURATION } : {}),
        ...(config.WORKER_STALLED_INTERVAL ? { stalledIntervalMs: config.WORKER_STALLED_INTERVAL } : {}),
      });
    }
    if (options.api) {
      // On the DLQ capture's stream: one QueueEvents per process, each event parsed once.
      waiter = new CompletionWaiter(dlq.capture.events);
      await waiter.ready();
      const dlqOps = dlq.dlq;
      metrics = createMetrics({ queueCounts: () => producer.capacity(), dlqSize: () => dlqOps.size(), workerBreakers: () => integ.workerBreakerStates() });
      const stopScanMetrics = scanEventsToMetrics(waiter.events, metrics);
      const counted = metrics;
      // Every API process sees every capture once, like scan outcomes: dashboards take max by code.
      const stopDlqCount = dlq.onCapture((entry) => counted.dlqCaptured.inc({ code: entry.code }));
      owned.push(async () => {
        stopScanMetrics();
        stopDlqCount();
      });
      const unbindGauges = bindIntegrationGauges(metrics, integ.clients.registry, integ.alerts);
      owned.push(async () => unbindGauges());
      // `wcagai top`: GET /admin/events and /admin/snapshot (throughput counted from this process's QueueEvents).
      const events = startEventsRuntime({
        health: { redis, keys, store, producer, scanner, healthSections },
        waiter,
        logger,
        breakers: { processId: integ.processId, snapshot: () => integ.clients.registry.snapshot() },
        dlq: dlqOps,
        alerts: integ.alerts,
      });
      app = await buildServer({ config, logger, redis, keys, producer, store, waiter, policy: policyOf(config), toRedisError, scanner, metrics, reporter, healthSections, extend: [dlq.routes, integ.routes, events.routes] });
    } else if (options.healthServer) {
      app = await buildHealthServer({ logger, redis, keys, producer, store, scanner, healthSections });
    }
    integ.start();
    // A process without a worker publishes a heartbeat of its own (role api): its breakers and
    // memory reach the fleet views and alerts of every process, and it is never counted as a worker.
    if (options.api && !worker) apiHeartbeat = startApiHeartbeat(redis, keys, integ.processId, integ.heartbeatExtra);
  } catch (err) {
    await Promise.allSettled([scanner?.close(), queue.close(), waiter?.close(), dlq?.close(), integrations?.close()]);
    gate?.close();
    gateProbe.disconnect();
    redis.disconnect();
    workerRedis?.disconnect();
    throw err;
  }

  const dlqRuntime = dlq;
  const integrationsRuntime = integrations;
  const redisGate = gate;
  const subscriber = breakerChannel;
  const ownHeartbeat = apiHeartbeat;
  let closing: Promise<{ released: boolean }> | null = null;
  /**
   * During shutdown, while the gate says Redis hangs: the connections it does not cover (the
   * breaker channel's, the worker's) would wait for answers that do not come, the worker's until
   * SHUTDOWN_TIMEOUT although no scan runs. They are cut, the worker's once no scan runs here; a
   * scan that was storing its result stays active in Redis and is run again after its lock expires.
   */
  const cutWhileHung = () => {
    const timer = setInterval(() => {
      if (!redisGate || redisGate.open) return;
      subscriber?.disconnect();
      if ((scanner?.stats().active ?? 0) > 0) return;
      workerRedis?.disconnect();
      clearInterval(timer);
    }, 100);
    timer.unref();
    return timer;
  };
  return {
    config,
    keys,
    app,
    worker,
    scanner,
    queue,
    redis,
    producer,
    dlq: dlq.dlq,
    reporter: reporter ?? noopReporter,
    close(deadlineMs = config.SHUTDOWN_TIMEOUT) {
      closing ??= (async () => {
        const started = Date.now();
        const left = () => Math.max(1_000, deadlineMs - (Date.now() - started));
        // Stop fetching scans at once: the worker's close takes no new job and lets the active
        // ones finish (at the deadline it returns them to the queue). Meanwhile the API stops
        // accepting (new requests get 503 SHUTTING_DOWN) and answers in-flight requests,
        // Prefer: wait included; alerts and breaker control stop, so nothing is evaluated or
        // applied while the process winds down. Every step that needs Redis is bounded: with
        // Redis unreachable its commands would never settle, and the browser must still be closed.
        const cutting = cutWhileHung();
        const workerClosed = worker ? worker.close(left()) : Promise.resolve({ released: false });
        const appClosed = app ? settleWithin(app.close(), left()) : Promise.resolve();
        await settleWithin(integrationsRuntime.close(), left());
        const { released } = await workerClosed;
        const scannerClosed = scanner?.close();
        // No scan starts here any more: a request still waiting on one that is not finished
        // answers 202 now instead of holding the shutdown until the deadline.
        if (worker) await waiter?.close();
        await appClosed;
        // Served its last request: leaves the fleet views (bounded; with Redis down it expires).
        await ownHeartbeat?.stop();
        // After the worker: the failures of its last scans are still captured.
        await settleWithin(dlqRuntime.close(), left());
        await Promise.allSettled([scannerClosed, waiter?.close(), settleWithin(queue.close(), left()), ...owned.map((f) => f())]);
        await reporter?.close(2_000).catch(() => false);
        // While Redis hangs the gate fails the QUIT at once; closed after it, so the end of the
        // connection is not taken for an outage.
        await Promise.allSettled([redis, workerRedis].map((r) => r && settleWithin(r.quit(), 1_000).then(() => r.disconnect())));
        clearInterval(cutting);
        redisGate?.close();
        gateProbe.disconnect();
        return { released };
      })();
      return closing;
    },
  };
}

/** A connection whose errors are logged at debug level (ioredis otherwise prints each failed reconnect during an outage). */
function quietConnection(redis: RedisClient, logger: Logger): RedisClient {
  redis.on('error', (err: Error) => logger.debug({ event: 'redis.error', err: err.message }, 'redis connection error'));
  return redis;
}
