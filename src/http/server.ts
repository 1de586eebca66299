import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Keys } from '../queue/keys.js';
import type { ScanProducer } from '../queue/producer.js';
import type { ResultStore } from '../queue/store.js';
import type { CompletionWaiter } from '../queue/waiter.js';
import type { TargetPolicy } from '../scanner/types.js';
import { requestIdFrom, requestIdPlugin } from './plugins/request-id.js';
import { classifyHttpError, problem, sendProblem } from './problem.js';
import { batchRoutes } from './routes/batches.js';
import { scanRoutes } from './routes/scans.js';
import { workerRoutes } from './routes/workers.js';

/** Everything the HTTP layer uses; built by the composition root, faked by nothing. */
export interface ServerDeps {
  config: Config;
  logger: Logger;
  redis: Redis;
  keys: Keys;
  producer: ScanProducer;
  store: ResultStore;
  waiter: CompletionWaiter;
  policy: TargetPolicy;
  toRedisError(err: unknown): Error;
}

/** Builds the API without listening (only `serve` listens; tests use `inject`). */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    bodyLimit: deps.config.BODY_LIMIT,
    // Prefer: wait holds a request up to 120 s without traffic; slow senders are bounded by requestTimeout.
    requestTimeout: 30_000,
    connectionTimeout: 130_000,
    keepAliveTimeout: 5_000,
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  });
  requestIdPlugin(app);
  // JSON only: Fastify's built-in text/plain parser would let other media types reach validation instead of a 415.
  app.removeContentTypeParser('text/plain');

  app.setNotFoundHandler((request, reply) => sendProblem(reply, problem(request, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`)));
  app.setErrorHandler((err, request, reply) => {
    const { code, detail, extra, headers, internal } = classifyHttpError(err);
    if (internal) request.log.error({ err, event: 'http.error' }, 'request failed');
    else request.log.info({ event: 'http.problem', code }, detail);
    return sendProblem(reply, problem(request, code, detail, extra), headers);
  });

  scanRoutes(app, deps);
  batchRoutes(app, deps);
  workerRoutes(app, deps);
  return app;
}
