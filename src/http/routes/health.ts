import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { toolInfo } from '../../domain/version.js';
import { listWorkers, type WorkerHeartbeat } from '../../queue/heartbeat.js';
import type { Capacity } from '../../queue/producer.js';
import { problem, sendProblem } from '../problem.js';
import type { ServerDeps } from '../server.js';
import { methodGuard } from './method-guard.js';

const MB = 2 ** 20;
type CheckStatus = 'up' | 'down';

async function timed<T>(fn: () => Promise<T>, timeoutMs = 1_000): Promise<{ ok: boolean; ms: number; value?: T }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([fn(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]);
    return { ok: true, ms: Math.round((performance.now() - started) * 10) / 10, value };
  } catch {
    return { ok: false, ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** Extra sections later subsystems add to /health/detailed (breakers, DLQ, alerts). */
export type HealthSection = () => Promise<{ key: string; value: unknown; healthy: boolean }>;

/** Liveness, readiness, a short summary and the detailed view operators and `top` read. */
export function healthRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  app.addHook('onClose', async () => loop.disable());
  const started = Date.now();
  const sections: HealthSection[] = deps.healthSections ?? [];

  const browserCheck = () => {
    if (!deps.scanner) return undefined;
    const s = deps.scanner.stats();
    return { status: (s.browserPid !== null ? 'up' : 'down') as CheckStatus, pages: s.concurrency, active: s.active, restarts: s.browserRestarts };
  };

  app.get('/health/live', async () => ({ status: 'ok', timestamp: new Date().toISOString() }));
  methodGuard(app, '/health/live', ['GET']);

  app.get('/health/ready', async (request, reply) => {
    const redis = await timed(() => deps.redis.ping());
    const browser = browserCheck();
    const checks = { redis: { status: (redis.ok ? 'up' : 'down') as CheckStatus, responseTime: redis.ms }, ...(browser ? { browser } : {}) };
    if (redis.ok && (!browser || browser.status === 'up')) return { status: 'ready', checks };
    const down = Object.entries(checks).filter(([, c]) => c.status === 'down').map(([k]) => k);
    return sendProblem(reply, problem(request, 'REDIS_UNAVAILABLE', `not ready: ${down.join(', ')} unavailable`, { checks }), { 'retry-after': '5' });
  });
  methodGuard(app, '/health/ready', ['GET']);

  app.get('/health', async (_request, reply) => {
    const redis = await timed(() => deps.redis.ping());
    const status = redis.ok ? 'healthy' : 'unhealthy';
    return reply.code(redis.ok ? 200 : 503).send({ status, version: toolInfo().version, uptime: Math.round((Date.now() - started) / 1000) });
  });
  methodGuard(app, '/health', ['GET']);

  app.get('/health/detailed', async (_request, reply) => {
    const [redis, store, capacity, workers] = await Promise.all([
      timed(() => deps.redis.ping()),
      timed(() => deps.store.get('__health__')),
      timed<Capacity>(() => deps.producer.capacity(), 2_000),
      timed<WorkerHeartbeat[]>(() => listWorkers(deps.redis, deps.keys)),
    ]);
    const extra = await Promise.all(sections.map((s) => s().catch(() => null)));
    const browser = browserCheck();
    const mem = process.memoryUsage();
    const queue = capacity.value
      ? { capacity: capacity.value.state, waiting: capacity.value.waiting, active: capacity.value.active, delayed: capacity.value.delayed, failed: capacity.value.failed, paused: capacity.value.paused, utilizationPercent: capacity.value.utilizationPercent, maxCapacity: capacity.value.maxCapacity }
      : null;
    const degraded = !workers.value?.length || capacity.value?.state !== 'healthy' || browser?.status === 'down' || extra.some((s) => s && !s.healthy);
    const status = !redis.ok ? 'unhealthy' : degraded ? 'degraded' : 'healthy';
    const body: Record<string, unknown> = {
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
      system: {
        memory: { heapUsed: Math.round(mem.heapUsed / MB), heapTotal: Math.round(mem.heapTotal / MB), rss: Math.round(mem.rss / MB) },
        eventLoopDelayMs: Math.round((loop.mean / 1e6) * 10) / 10,
        eventLoopDelayP99Ms: Math.round((loop.percentile(99) / 1e6) * 10) / 10,
        uptime: Math.round((Date.now() - started) / 1000),
      },
    };
    for (const s of extra) if (s) body[s.key] = s.value;
    loop.reset();
    return reply.code(status === 'unhealthy' ? 503 : 200).send(body);
  });
  methodGuard(app, '/health/detailed', ['GET']);
}
