import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';
import { methodGuard } from './method-guard.js';

/** Admin routes of the queue (behind the admin token; see the auth plugin). */
export function adminQueueRoutes(app: FastifyInstance, deps: ServerDeps): void {
  // Read from Redis at the request (the feed's snapshot may be a second old): what `wcagai queue status` shows.
  app.get('/admin/queue', async () => deps.producer.capacity());
  // A Redis that does not answer is a 503 REDIS_UNAVAILABLE with Retry-After, as on every other
  // route: not a 500 INTERNAL logged as a bug (and reported to Sentry) for an outage.
  app.post('/admin/queue/pause', async (request) => {
    await deps.producer.queue.pause().catch((err: unknown) => {
      throw deps.toRedisError(err);
    });
    request.log.warn({ event: 'admin.queue.pause' }, 'queue paused');
    return { paused: true };
  });
  app.post('/admin/queue/resume', async (request) => {
    await deps.producer.queue.resume().catch((err: unknown) => {
      throw deps.toRedisError(err);
    });
    request.log.warn({ event: 'admin.queue.resume' }, 'queue resumed');
    return { paused: false };
  });
  methodGuard(app, '/admin/queue', ['GET']);
  methodGuard(app, '/admin/queue/pause', ['POST']);
  methodGuard(app, '/admin/queue/resume', ['POST']);
}
