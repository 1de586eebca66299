import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { toolInfo } from '../../domain/version.js';
import { listApiProcesses, listWorkers, type ApiHeartbeat, type WorkerHeartbeat } from '../../queue/heartbeat.js';
import type { Capacity } from '../../queue/producer.js';
import type { Scanner } from '../../scanner/types.js';
import { problem, sendProblem } from '../problem.js';
import type { ServerDeps } from '../server.js';
import { methodGuard } from './method-guard.js';

const MB = 2 ** 20;
type CheckStatus = 'up' | 'down';

export async function timed<T>(fn: () => Promise<T>, timeoutMs = 1_000): Promise<{ ok: boolean; ms: number; value?: T }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await new Promise<T>((resolve, reject) => {
      let settled = false;
      fn().then(
        (v) => {
          settled = true;
          resolve(v);
        },
        (err: unknown) => {
          settled = true;
          reject(err);
        },
      );
      // After a stall of this process (a long GC, a starved machine) the timer fires before the
      // event loop reads the replies that came in meanwhile: one turn for I/O first, so an answer
      // that arrived in time is not reported as a dependency that did not answer.
      timer = setTimeout(() => setImmediate(() => settled || reject(new Error('timeout'))), timeoutMs);
    });
    return { ok: true, ms: Math.round((performance.now() - started) * 10) / 10, value };
  } catch {
    return { ok: false, ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** Extra sections later subsystems add to /health/detailed (breakers, DLQ, alerts). */
export type HealthSection = () => Promise<{ key: string; value: unknown; healthy: boolean }>;

/** What the detailed health reads. */
export type DetailedHealthDeps = Pick<ServerDeps, 'redis' | 'keys' | 'store' | 'producer' | 'scanner' | 'healthSections'>;

export type ServiceStatus = 'healthy' | 'degraded' | 'unhealthy';

/** The body of GET /health/detailed; sections (`dlq`, `circuitBreakers`, …) are added under their keys. */
export interface DetailedHealthBody {
  status: ServiceStatus;
  timestamp: string;
  version: string;
  checks: Record<string, unknown>;
  queue: (Pick<Capacity, 'waiting' | 'active' | 'delayed' | 'failed' | 'paused' | 'utilizationPercent' | 'maxCapacity'> & { capacity: Capacity['state'] }) | null;
  /** Scan workers from their heartbeats: none makes the status degraded. */
  workers: WorkerHeartbeat[];
  /** Processes serving the API without a worker (this one included), from their heartbeats: never counted as workers. */
  apiProcesses: ApiHeartbeat[];
  system: {
    memory: { heapUsed: number; heapTotal: number; rss: number };
    eventLoopDelayMs: number;
    eventLoopDelayP99Ms: number;
    uptime: number;
  };
  [section: string]: unknown;
}

/** Computes the detailed health; each instance owns an event-loop delay monitor, reset after every computation. */
export interface DetailedHealth {
  compute(): Promise<DetailedHealthBody>;
  /** The body and the queue counts it was made from (`completed` is in the counts only). */
  measure(): Promise<{ body: DetailedHealthBody; capacity: Capacity | null }>;
  close(): void;
}

function browserCheckOf(scanner: Scanner | null | undefined) {
  if (!scanner) return undefined;
  const s = scanner.stats();
  // Connected, not merely known: a crashed browser keeps its pid until it is relaunched.
  const up = s.browserConnected ?? s.browserPid !== null;
  return { status: (up ? 'up' : 'down') as CheckStatus, pages: s.concurrency, active: s.active, restarts: s.browserRestarts };
}

/**
 * The detailed health of the deployment as /health/detailed answers it; also the `health` part of
 * the `top` snapshot (GET /admin/events), so both always agree. Uptime counts from `startedAt`.
 */
export function detailedHealth(deps: DetailedHealthDeps, startedAt = Date.now()): DetailedHealth {
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const sections: HealthSection[] = deps.healthSections ?? [];
  const measure = async (): Promise<{ body: DetailedHealthBody; capacity: Capacity | null }> => {
    const [redis, store, capacity, workers, apiProcesses] = await Promise.all([
      timed(() => deps.redis.ping()),
      timed(() => deps.store.get('__health__')),
      timed<Capacity>(() => deps.producer.capacity(), 2_000),
      timed<WorkerHeartbeat[]>(() => listWorkers(deps.redis, deps.keys)),
      timed<ApiHeartbeat[]>(() => listApiProcesses(deps.redis, deps.keys)),
    ]);
    const extra = await Promise.all(sections.map((s) => s().catch(() => null)));
    const browser = browserCheckOf(deps.scanner);
    const mem = process.memoryUsage();
    const c = capacity.value;
    const queue = c ? { capacity: c.state, waiting: c.waiting, active: c.active, delayed: c.delayed, failed: c.failed, paused: c.paused, utilizationPercent: c.utilizationPercent, maxCapacity: c.maxCapacity } : null;
    const degraded = !workers.value?.length || c?.state !== 'healthy' || browser?.status === 'down' || extra.some((s) => s && !s.healthy);
    const status: ServiceStatus = !redis.ok ? 'unhealthy' : degraded ? 'degraded' : 'healthy';
    const body: DetailedHealthBody = {
      status,
      timestamp: new Date().toISOString(),
      version: toolInfo().version,
      checks: {
        redis: { status: redis.ok ? 'up' : 'down', responseTime: redis.ms },
        store: { status: store.ok ? 'up' : 'down', responseTime: store.ms },
        ...(browser ? { browser } : {}),
      },
      queue,
      workers: workers.value ?? [],
      apiProcesses: apiProcesses.value ?? [],
      system: {
        memory: { heapUsed: Math.round(mem.heapUsed / MB), heapTotal: Math.round(mem.heapTotal / MB), rss: Math.round(mem.rss / MB) },
        eventLoopDelayMs: Math.round((loop.mean / 1e6) * 10) / 10,
        eventLoopDelayP99Ms: Math.round((loop.percentile(99) / 1e6) * 10) / 10,
        uptime: Math.round((Date.now() - startedAt) / 1000),
      },
    };
    for (const s of extra) if (s) body[s.key] = s.value;
    loop.reset();
    return { body, capacity: c ?? null };
  };
  return {
    compute: async () => (await measure()).body,
    measure,
    close: () => loop.disable(),
  };
}

/** Liveness, readiness, a short summary and the detailed view operators and `top` read. */
export function healthRoutes(app: FastifyInstance, deps: DetailedHealthDeps): void {
  const started = Date.now();
  const detailed = detailedHealth(deps, started);
  app.addHook('onClose', async () => detailed.close());

  // Exempt from under-pressure (a handler that returns nothing lets the request through): a busy
  // process is alive, and a liveness probe answered 503 would get it restarted for being busy.
  app.get('/health/live', { config: { pressureHandler: () => undefined } }, async () => ({ status: 'ok', timestamp: new Date().toISOString() }));
  methodGuard(app, '/health/live', ['GET']);

  app.get('/health/ready', async (request, reply) => {
    const redis = await timed(() => deps.redis.ping());
    const browser = browserCheckOf(deps.scanner);
    const checks = { redis: { status: (redis.ok ? 'up' : 'down') as CheckStatus, responseTime: redis.ms }, ...(browser ? { browser } : {}) };
    if (redis.ok && (!browser || browser.status === 'up')) return { status: 'ready', checks };
    const down = Object.entries(checks).filter(([, c]) => c.status === 'down').map(([k]) => k);
    // The code names what is down: a crashed browser is not a Redis outage.
    const code = redis.ok ? 'BROWSER_CRASHED' : 'REDIS_UNAVAILABLE';
    return sendProblem(reply, problem(request, code, `not ready: ${down.join(', ')} unavailable`, { checks }), { 'retry-after': '5' });
  });
  methodGuard(app, '/health/ready', ['GET']);

  app.get('/health', async (_request, reply) => {
    const redis = await timed(() => deps.redis.ping());
    const status = redis.ok ? 'healthy' : 'unhealthy';
    return reply.code(redis.ok ? 200 : 503).send({ status, version: toolInfo().version, uptime: Math.round((Date.now() - started) / 1000) });
  });
  methodGuard(app, '/health', ['GET']);

  app.get('/health/detailed', async (_request, reply) => {
    const body = await detailed.compute();
    return reply.code(body.status === 'unhealthy' ? 503 : 200).send(body);
  });
  methodGuard(app, '/health/detailed', ['GET']);
}
