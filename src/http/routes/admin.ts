import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../server.js';
import { methodGuard } from './method-guard.js';

/** Admin routes of the queue (behind the admin token; see the auth plugin). */
export function adminQueueRoutes(app: FastifyInstance, deps: ServerDeps): void {
  // Read from Redis at the request (the feed's snapshot may be a second old): what `wcagai queue status` shows.
  app.get('/admin/queue', async () => deps.producer.capacity());
  app.post('/admin/queue/pause', async (request) => {
    await deps.producer.queue.pause();
    request.log.warn({ event: 'admin.queue.pause' }, 'queue paused');
    return { paused: true };
  });
  app.post('/admin/queue/resume', async (request) => {
    await deps.producer.queue.resume();
    request.log.warn({ event: 'admin.queue.resume' }, 'queue resumed');
    return { paused: false };
  });
  methodGuard(app, '/admin/queue', ['GET']);
  methodGuard(app, '/admin/queue/pause', ['POST']);
  methodGuard(app, '/admin/queue/resume', ['POST']);
}
