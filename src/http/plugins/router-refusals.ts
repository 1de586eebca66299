import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Told of a router refusal once its answer is written, with its duration in milliseconds. */
export type RefusalObserver = (request: FastifyRequest, reply: FastifyReply, ms: number) => void;

const observers = new WeakMap<FastifyInstance, RefusalObserver[]>();

/**
 * Fastify answers a request its router refuses (a malformed %-escape, a path parameter over
 * maxParamLength) through `frameworkErrors`, with no route and so no hook: no onSend, no
 * onResponse. A plugin that must see every answer (metrics) registers here as well.
 */
export function onRouterRefusal(app: FastifyInstance, observer: RefusalObserver): void {
  const list = observers.get(app) ?? [];
  list.push(observer);
  observers.set(app, list);
}

/**
 * Called by frameworkErrors before it answers `request` with problem `code`: once the answer is
 * written, the observers are told and the "request completed" line is logged, as for any answer.
 */
export function routerRefused(request: FastifyRequest, reply: FastifyReply, code: string): void {
  reply.problemCode = code;
  const started = performance.now();
  reply.raw.once('finish', () => {
    const ms = performance.now() - started;
    for (const observer of observers.get(request.server) ?? []) observer(request, reply, ms);
    request.log.info({ res: reply, responseTime: ms }, 'request completed');
  });
}
