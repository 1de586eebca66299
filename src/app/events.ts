import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { adminEvents, type AdminEvents } from '../http/routes/admin-events.js';
import { detailedHealth, type DetailedHealthDeps } from '../http/routes/health.js';
import { snapshotComputer, type SnapshotSources } from '../http/snapshot.js';
import type { CompletionWaiter } from '../queue/waiter.js';
import { ThroughputTracker } from '../queue/throughput.js';

export interface EventsRuntimeOptions {
  health: DetailedHealthDeps;
  /** The process's QueueEvents stream: throughput is counted from it. */
  waiter: CompletionWaiter;
  logger: Logger;
  /** Each optional: its section is left out of the snapshot when absent. */
  breakers?: SnapshotSources['breakers'];
  dlq?: SnapshotSources['dlq'];
  alerts?: SnapshotSources['alerts'] | null;
  intervalMs?: number;
}

/** The `top` feed of one API process: throughput counting (always on, cheap) and the /admin/events routes; stopped when the app closes. */
export interface EventsRuntime extends AdminEvents {
  throughput: ThroughputTracker;
}

export function startEventsRuntime(options: EventsRuntimeOptions): EventsRuntime {
  const throughput = new ThroughputTracker();
  const detach = throughput.attach(options.waiter.events);
  const health = detailedHealth(options.health);
  const events = adminEvents({
    compute: snapshotComputer({
      health: () => health.measure(),
      throughput: () => throughput.view(),
      ...(options.breakers ? { breakers: options.breakers } : {}),
      ...(options.dlq ? { dlq: options.dlq } : {}),
      ...(options.alerts ? { alerts: options.alerts } : {}),
    }),
    ...(options.intervalMs ? { intervalMs: options.intervalMs } : {}),
    onError: (err) => options.logger.warn({ event: 'admin.events.error', err: (err as Error).message }, 'snapshot computation failed'),
  });
  return {
    ...events,
    throughput,
    routes: (app: FastifyInstance) => {
      events.routes(app);
      app.addHook('onClose', async () => {
        detach();
        health.close();
      });
    },
  };
}
