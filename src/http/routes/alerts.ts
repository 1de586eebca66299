import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AlertManager } from '../../alerts/manager.js';
import { parseDuration } from '../../config/schema.js';
import { parseOrThrow } from '../validation.js';
import { methodGuard } from './method-guard.js';

const query = z.object({ limit: z.coerce.number({ error: 'expected an integer' }).int('expected an integer').min(1).max(200).default(50) }).strict();

const MIN_SILENCE_MS = 60_000;
const MAX_SILENCE_MS = 30 * 86_400_000;

const silenceBody = z
  .object({
    for: z.string({ error: 'expected a duration such as 30m or 2h' }).transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === null || ms < MIN_SILENCE_MS || ms > MAX_SILENCE_MS) {
        ctx.addIssue({ code: 'custom', message: 'expected a duration from 1m to 30d, such as 30m or 2h' });
        return z.NEVER;
      }
      return ms;
    }),
    reason: z.string().trim().min(1).max(200).optional(),
  })
  .strict();

/**
 * GET /admin/alerts: firing alerts, resolves still owed, silences and the newest notifications
 * (fleet-wide, from Redis). POST|DELETE /admin/alerts/:id/silence: silence an alert for a while
 * (no trigger is sent; it is still evaluated and shown) or lift its silence.
 */
export function alertRoutes(manager: AlertManager): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/admin/alerts', async (request) => {
      const q = parseOrThrow(query, request.query, 'query');
      return manager.view(q.limit);
    });
    methodGuard(app, '/admin/alerts', ['GET']);

    const url = '/admin/alerts/:id/silence';
    app.post<{ Params: { id: string } }>(url, async (request) => {
      const body = parseOrThrow(silenceBody, request.body ?? {});
      const silence = await manager.silence(request.params.id, body.for, body.reason);
      return { silence };
    });
    app.delete<{ Params: { id: string } }>(url, async (request) => manager.unsilence(request.params.id));
    methodGuard(app, url, ['POST', 'DELETE']);
  };
}
