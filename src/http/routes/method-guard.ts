import type { FastifyInstance, HTTPMethods } from 'fastify';
import { problem, sendProblem } from '../problem.js';

/**
 * Answers 405 with `Allow` for the methods a path does not serve (Fastify alone would say 404):
 * every method Fastify routes, TRACE and QUERY included.
 */
export function methodGuard(app: FastifyInstance, url: string, allowed: HTTPMethods[]): void {
  const allow = allowed.includes('GET') && !allowed.includes('HEAD') ? [...allowed, 'HEAD' as const] : allowed;
  const others = (app.supportedMethods as HTTPMethods[]).filter((m) => !allow.includes(m));
  app.route({
    method: others,
    url,
    handler: (request, reply) =>
      sendProblem(reply, problem(request, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${url}; use ${allow.join(', ')}`), { allow: allow.join(', ') }),
  });
}
