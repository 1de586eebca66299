import type { FastifyInstance } from 'fastify';
import type { BreakerFleet } from '../../clients/fleet.js';
import type { BreakerRegistry, BreakerSnapshot } from '../../clients/registry.js';
import { WcagaiError } from '../../errors/catalogue.js';
import type { HealthSection } from './health.js';
import { methodGuard } from './method-guard.js';

/** Breakers another process reported in its heartbeat. */
export interface RemoteBreakers {
  process: string;
  /** `worker` runs scans; `api` serves the API without a worker. */
  role: 'api' | 'worker';
  host?: string;
  pid?: number;
  at?: string;
  breakers: Record<string, BreakerSnapshot>;
}

export interface BreakerRouteDeps {
  registry: BreakerRegistry;
  fleet: BreakerFleet;
  /** This process's id, as other processes and heartbeats name it. */
  processId: string;
  /** Runs a scan worker (`worker`) or serves the API alone (`api`). */
  role: 'api' | 'worker';
  /** Breakers of every other live process (workers and API processes), from their heartbeats. */
  fleetBreakers(): Promise<RemoteBreakers[]>;
}

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** `circuitBreakers` of /health/detailed: this process's breakers; unhealthy while one is open or isolated. */
export function breakerHealthSection(registry: BreakerRegistry): HealthSection {
  return async () => {
    const services = Object.fromEntries(
      Object.entries(registry.snapshot()).map(([name, s]) => [name, { state: s.state, failures: s.failures, lastFailureAt: s.lastFailureAt, openedAt: s.openedAt }]),
    );
    const healthy = registry.healthy();
    return { key: 'circuitBreakers', value: { healthy, services }, healthy };
  };
}

/** GET /admin/breakers, POST /admin/breakers/:name/reset|isolate (behind the admin token like every /admin path). */
export function breakerRoutes(deps: BreakerRouteDeps): (app: FastifyInstance) => void {
  return (app) => {
    // `workers` keeps its meaning (scan workers only); the other API processes are in `apiProcesses`.
    app.get('/admin/breakers', async () => {
      const others = await deps.fleetBreakers().catch(() => []);
      return {
        process: { id: deps.processId, role: deps.role, breakers: deps.registry.snapshot() },
        workers: others.filter((p) => p.role === 'worker'),
        apiProcesses: others.filter((p) => p.role === 'api'),
      };
    });
    methodGuard(app, '/admin/breakers', ['GET']);

    for (const action of ['reset', 'isolate'] as const) {
      const url = `/admin/breakers/:name/${action}`;
      app.post<{ Params: { name: string } }>(url, async (request) => {
        const { name } = request.params;
        if (!NAME.test(name) || !deps.registry.has(name)) throw new WcagaiError('NOT_FOUND', `no circuit breaker named "${name.slice(0, 40)}"; known: ${deps.registry.names().join(', ')}`);
        const answer = await deps.fleet.act(action, name);
        request.log.warn({ event: `admin.breaker.${action}`, breaker: name, reached: answer.reached }, `circuit breaker ${name}: ${action}`);
        return { action, ...answer };
      });
      methodGuard(app, url, ['POST']);
    }
  };
}
