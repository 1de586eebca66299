import { createHash, timingSafeEqual } from 'node:crypto';
import type { QueueEvents } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Metrics, observeScan, type ScanTimings } from '../../observability/metrics.js';
import { PROBLEM_CONTENT_TYPE, problem, sendProblem } from '../problem.js';
import { methodGuard } from '../routes/method-guard.js';
import { onRouterRefusal } from './router-refusals.js';
import { parseJobOutcome } from '../../queue/processor.js';

declare module 'fastify' {
  interface FastifyReply {
    /** The `code` of the problem document this reply sends, if it sends one. */
    problemCode?: string;
  }
}

const PROBLEM_MEDIA_TYPE = PROBLEM_CONTENT_TYPE.split(';')[0]!;

/**
 * Records the problem code of every problem answer on `reply.problemCode`. sendProblem() always
 * sends the Problem as an object, so preSerialization sees it before it becomes text: no parsing
 * and nothing for problem.ts to call. Idempotent: the metrics and error-reporting plugins both need it.
 */
export function trackProblemCodes(app: FastifyInstance): void {
  if (app.hasReplyDecorator('problemCode')) return;
  app.decorateReply('problemCode', undefined);
  app.addHook('preSerialization', (request, reply, payload, done) => {
    const type = String(reply.getHeader('content-type') ?? '');
    const code = (payload as { code?: unknown } | null)?.code;
    if (type.startsWith(PROBLEM_MEDIA_TYPE) && typeof code === 'string') reply.problemCode = code;
    done(null, payload);
  });
}

/** The route template of a request (`/v1/scans/:id`), or "unmatched" so 404 probes cannot explode label cardinality. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time bearer check; hashing first makes both buffers 32 bytes, so the token's length does not leak either. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return timingSafeEqual(sha256(m?.[1] ?? ''), sha256(token)) && m !== null;
}

export interface MetricsPluginOptions {
  /** METRICS_TOKEN: when set, GET /metrics requires `Authorization: Bearer <token>`. */
  token?: string;
}

/** HTTP request metrics for every route, and GET /metrics in Prometheus text format. */
export function metricsPlugin(app: FastifyInstance, metrics: Metrics, opts: MetricsPluginOptions = {}): void {
  trackProblemCodes(app);
  const record = (request: FastifyRequest, reply: FastifyReply, ms: number) => {
    const labels = { route: routeLabel(request), method: request.method, status_code: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpRequestDuration.observe(labels, ms / 1000);
    if (reply.statusCode >= 400) metrics.httpErrors.inc({ code: reply.problemCode ?? 'UNCODED', status_code: labels.status_code });
  };
  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply, reply.elapsedTime);
    done();
  });
  // Requests the router refuses run no hook (see router-refusals.ts): counted all the same.
  onRouterRefusal(app, record);

  // Under @fastify/under-pressure a scrape is let through (a pressure handler that returns nothing
  // continues the request): the metrics are most needed exactly when the process is overloaded.
  const config = { pressureHandler: () => undefined };
  app.get('/metrics', { config }, async (request, reply) => {
    if (opts.token !== undefined && !bearerMatches(request.headers.authorization, opts.token)) {
      return sendProblem(reply, problem(request, 'UNAUTHORIZED', 'GET /metrics requires Authorization: Bearer <METRICS_TOKEN>'), {
        'www-authenticate': 'Bearer realm="metrics"',
      });
    }
    const body = await metrics.registry.metrics();
    return reply.header('cache-control', 'no-store').type(metrics.registry.contentType).send(body);
  });
  // 405 with Allow for other methods, as on every other route (Fastify alone would answer 404).
  methodGuard(app, '/metrics', ['GET']);
}

function timingsOf(returnvalue: unknown): ScanTimings | undefined {
  const t: Partial<ScanTimings> | undefined = parseJobOutcome(returnvalue)?.timings;
  if (!t || typeof t !== 'object') return undefined;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
  // observeScan skips NaN phases, so a partial record still yields the phases it has.
  return { navigationMs: num(t.navigationMs), settleMs: num(t.settleMs), axeMs: num(t.axeMs), totalMs: num(t.totalMs) };
}

/**
 * Counts completed and failed scans of the whole fleet from BullMQ's event stream. `failed` is
 * only emitted once a job has no attempts left, so retries are not counted as failures.
 * Returns a function that unsubscribes.
 */
export function scanEventsToMetrics(events: QueueEvents, metrics: Metrics): () => void {
  const onCompleted = ({ returnvalue }: { returnvalue: unknown }) => observeScan(metrics, timingsOf(returnvalue), 'completed');
  const onFailed = () => observeScan(metrics, undefined, 'failed');
  events.on('completed', onCompleted);
  events.on('failed', onFailed);
  return () => {
    events.off('completed', onCompleted);
    events.off('failed', onFailed);
  };
}
