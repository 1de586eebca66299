import { SHUTDOWN_GRACE_MS } from '../app/lifecycle.js';
import { runtimeFromEnv } from '../app/runtime.js';
import { startService } from '../app/service.js';
import { listenOrStop } from './listen.js';
import { runService } from './run-service.js';

export interface ServeFlags {
  port?: number;
  host?: string;
  workers?: number;
  worker: boolean;
}

/** `wcagai serve`: the API plus, unless --no-worker, an embedded worker. Resolves when shut down. */
export async function runServe(flags: ServeFlags): Promise<number> {
  const overrides: Record<string, string> = {};
  if (flags.port !== undefined) overrides.PORT = String(flags.port);
  if (flags.host) overrides.HOST = flags.host;
  const { config, logger, env } = runtimeFromEnv(overrides, 'wcagai');
  const concurrency = flags.worker ? (flags.workers ?? config.WORKER_CONCURRENCY) : 0;
  return runService(logger, config.SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE_MS, () => startService(config, logger, { api: true, workerConcurrency: concurrency, env }), async (service, removeHandlers) => {
    const address = await listenOrStop(service, service.app!, config.HOST, config.PORT, removeHandlers);
    logger.info({ event: 'serve.listening', address, worker: concurrency > 0, concurrency }, `wcagai listening on ${address}`);
  });
}
