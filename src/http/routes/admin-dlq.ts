import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { hasDurationUnit, parseDuration } from '../../config/schema.js';
import { ERROR_CODE_PATTERN, isHostFilter, type DlqFilter, type DlqOperations, type DlqSummary } from '../../domain/dlq.js';
import { decodeCursor } from '../../queue/dlq-store.js';
import { FieldProblem } from '../../queue/submission.js';
import { ValidationError } from '../problem.js';
import { parseOrThrow, validateOrThrow, type FieldCheck } from '../validation.js';
import type { HealthSection } from './health.js';
import { methodGuard } from './method-guard.js';

const code = z.string().regex(ERROR_CODE_PATTERN, 'expected an error code such as HTTP_SERVER_ERROR');
const host = z.string().min(1).max(300).refine(isHostFilter, 'expected a host such as shop.example.com or host:port, not a URL');

const listQuery = z
  .object({
    limit: z.coerce.number({ error: 'expected an integer' }).int('expected an integer').min(1).max(1_000).default(50),
    cursor: z.string().min(1).max(500).optional(),
    code: code.optional(),
    host: host.optional(),
  })
  .strict();

const bulkBody = z
  .object({ code: code.optional(), host: host.optional(), all: z.literal(true, { error: 'expected true' }).optional() })
  .strict()
  .refine((b) => [b.code, b.host, b.all].filter((v) => v !== undefined).length === 1, { message: 'give exactly one of code, host or all', path: ['code'] });

const purgeQuery = z.object({ olderThan: z.string({ error: 'required, e.g. 30d' }).min(1, 'required, e.g. 30d') }).strict();

/**
 * The form of a DLQ cursor (base64url JSON `[score, id]`, as DlqStore hands it out), checked
 * before Redis so a bad cursor is named with the other bad fields; the store checks it again.
 */
const cursorCheck: FieldCheck = (raw) => {
  if (typeof raw.cursor !== 'string' || raw.cursor === '' || decodeCursor(raw.cursor)) return [];
  return [new FieldProblem('VALIDATION_FAILED', 'cursor', 'not a cursor of this DLQ (pass nextCursor of a previous page as it is)')];
};

const DURATION_EXPECTED = 'expected a duration with its unit such as 12h, 30d';
const olderThanCheck: FieldCheck = (raw) =>
  typeof raw.olderThan === 'string' && raw.olderThan !== '' && !(hasDurationUnit(raw.olderThan) && parseDuration(raw.olderThan) !== null) ? [new FieldProblem('VALIDATION_FAILED', 'olderThan', DURATION_EXPECTED)] : [];

/** Admin routes of the dead-letter queue (behind the admin token like every /admin path). */
export function adminDlqRoutes(dlq: DlqOperations): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/admin/dlq/jobs', async (request) => {
      const q = await validateOrThrow(listQuery, request.query, [cursorCheck], 'query');
      return dlq.list(q);
    });
    methodGuard(app, '/admin/dlq/jobs', ['GET']);

    app.get<{ Params: { id: string } }>('/admin/dlq/jobs/:id', async (request) => dlq.get(request.params.id));
    app.delete<{ Params: { id: string } }>('/admin/dlq/jobs/:id', async (request) => {
      await dlq.remove(request.params.id);
      request.log.warn({ event: 'admin.dlq.delete', dlqId: request.params.id }, 'DLQ entry deleted');
      return { id: request.params.id, deleted: true };
    });
    methodGuard(app, '/admin/dlq/jobs/:id', ['GET', 'DELETE']);

    app.get('/admin/dlq/stats', async () => dlq.stats());
    methodGuard(app, '/admin/dlq/stats', ['GET']);

    app.post<{ Params: { id: string } }>('/admin/dlq/retry/:id', async (request, reply) => {
      const result = await dlq.retry(request.params.id);
      request.log.warn({ event: 'admin.dlq.retry', dlqId: result.id, jobId: result.jobId }, 'DLQ entry retried');
      return reply.code(202).send({ ...result, links: { scan: `/api/scans/${result.jobId}`, entry: `/admin/dlq/jobs/${result.id}` } });
    });
    methodGuard(app, '/admin/dlq/retry/:id', ['POST']);

    app.post('/admin/dlq/retry', async (request, reply) => {
      const body = parseOrThrow(bulkBody, request.body ?? {}, 'body');
      const filter: DlqFilter = body.code !== undefined ? { code: body.code } : body.host !== undefined ? { host: body.host } : { all: true };
      const result = await dlq.retryMany(filter);
      request.log.warn({ event: 'admin.dlq.retry_bulk', filter, retried: result.retried.length, skipped: result.skipped.length }, 'DLQ bulk retry');
      return reply.code(202).send(result);
    });
    methodGuard(app, '/admin/dlq/retry', ['POST']);

    app.post('/admin/dlq/purge', async (request) => {
      const { olderThan } = await validateOrThrow(purgeQuery, request.query, [olderThanCheck], 'query');
      const ms = hasDurationUnit(olderThan) ? parseDuration(olderThan) : null;
      if (ms === null) throw new ValidationError([{ field: 'olderThan', message: DURATION_EXPECTED }], 'invalid query');
      const result = await dlq.purge({ olderThanMs: ms });
      request.log.warn({ event: 'admin.dlq.purge', olderThanMs: ms, removed: result.removed }, 'DLQ purged');
      return { ...result, olderThan };
    });
    methodGuard(app, '/admin/dlq/purge', ['POST']);
  };
}

/** The `dlq` section of /health/detailed. A full DLQ is an operator's task, not a health failure. */
export function dlqHealthSection(summary: () => Promise<DlqSummary>): HealthSection {
  return async () => ({ key: 'dlq', value: await summary(), healthy: true });
}
