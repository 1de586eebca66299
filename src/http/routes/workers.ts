import type { FastifyInstance } from 'fastify';
import { listWorkers } from '../../queue/heartbeat.js';
import type { ServerDeps } from '../server.js';
import { methodGuard } from './method-guard.js';

/** `GET /api/workers`: live workers from their heartbeats; `GET /api/queue`: capacity. */
export function workerRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/api/workers', async () => {
    const workers = await listWorkers(deps.redis, deps.keys).catch((err: Error) => {
      throw deps.toRedisError(err);
    });
    return { workers };
  });
  methodGuard(app, '/api/workers', ['GET']);
  app.get('/api/queue', async () => deps.producer.capacity());
  methodGuard(app, '/api/queue', ['GET']);
}
