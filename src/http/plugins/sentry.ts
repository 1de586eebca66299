import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ErrorReporter } from '../../observability/sentry.js';
import { routeLabel, trackProblemCodes } from './metrics.js';

/**
 * 503s that answer load rather than reveal a bug: one per rejected request would flood the error
 * tracker exactly when the service is busiest. Metrics count them (wcagai_http_errors_total).
 */
export const EXPECTED_5XX_CODES: readonly string[] = ['QUEUE_FULL', 'OVERLOADED', 'SHUTTING_DOWN'];

export interface ErrorReportingPluginOptions {
  /** Problem codes of 5xx answers not to report; defaults to EXPECTED_5XX_CODES. */
  ignoreCodes?: readonly string[];
}

/** Reports every 5xx answer (with the thrown error when there is one) tagged with the request id. */
export function errorReportingPlugin(app: FastifyInstance, reporter: ErrorReporter, opts: ErrorReportingPluginOptions = {}): void {
  if (!reporter.enabled) return;
  const ignore = new Set(opts.ignoreCodes ?? EXPECTED_5XX_CODES);
  const thrown = new WeakMap<FastifyRequest, Error>();
  trackProblemCodes(app);
  // onError sees the original error (with its stack) before the error handler turns it into a problem.
  app.addHook('onError', (request, _reply, error, done) => {
    thrown.set(request, error);
    done();
  });
  // onResponse also covers 5xx answers sent without throwing (a route calling sendProblem directly).
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    const code = reply.problemCode;
    if (status >= 500 && !(code && ignore.has(code))) {
      const route = routeLabel(request);
      const err = thrown.get(request) ?? new Error(`${request.method} ${route} answered ${status}${code ? ` ${code}` : ''}`);
      reporter.capture(err, {
        requestId: String(request.id),
        tags: { route, method: request.method, status_code: status, ...(code ? { code } : {}) },
      });
    }
    done();
  });
}
