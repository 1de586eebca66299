import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AlertManager } from '../../alerts/manager.js';
import { parseOrThrow } from '../validation.js';
import { methodGuard } from './method-guard.js';

const query = z.object({ limit: z.coerce.number({ error: 'expected an integer' }).int('expected an integer').min(1).max(200).default(50) }).strict();

/** GET /admin/alerts: firing alerts, resolves still owed, and the newest notifications (fleet-wide, from Redis). */
export function alertRoutes(manager: AlertManager): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/admin/alerts', async (request) => {
      const q = parseOrThrow(query, request.query, 'query');
      return manager.view(q.limit);
    });
    methodGuard(app, '/admin/alerts', ['GET']);
  };
}
