import { AsyncLocalStorage } from 'node:async_hooks';

/** What every log line and outgoing call of a request or job carries. */
export interface RequestContext {
  requestId?: string;
  traceId?: string;
  jobId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** The context of the current request or job, if any. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/** Runs `fn` inside `ctx` (merged over the current one). */
export function runWithContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run({ ...storage.getStore(), ...ctx }, fn);
}

/** Runs `fn`, and everything it starts, outside any request or job (a process-wide task begun inside one). */
export function outsideContext<T>(fn: () => T): T {
  return storage.exit(fn);
}

/** Enters `ctx` for the rest of the current async flow (used by Fastify's onRequest hook). */
export function enterContext(ctx: RequestContext): void {
  storage.enterWith({ ...storage.getStore(), ...ctx });
}
