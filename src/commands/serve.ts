import { installProcessHandlers, SHUTDOWN_GRACE_MS } from '../app/lifecycle.js';
import { runtimeFromEnv } from '../app/runtime.js';
import { startService } from '../app/service.js';
import { listenOrStop } from './listen.js';

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
  const service = await startService(config, logger, { api: true, workerConcurrency: concurrency, env });
  let exitCode = 0;
  let removeHandlers: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    removeHandlers = installProcessHandlers(logger, async (reason) => {
      if (reason === 'uncaughtException') exitCode = 1;
      await service.close();
      resolve();
    }, (err) => service.reporter.capture(err), { forceAfterMs: config.SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE_MS });
  });
  const address = await listenOrStop(service, service.app!, config.HOST, config.PORT, removeHandlers);
  logger.info({ event: 'serve.listening', address, worker: concurrency > 0, concurrency }, `wcagai listening on ${address}`);
  await finished;
  return exitCode;
}
