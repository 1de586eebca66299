import { installProcessHandlers, SHUTDOWN_GRACE_MS } from '../app/lifecycle.js';
import { runtimeFromEnv } from '../app/runtime.js';
import { startService } from '../app/service.js';

/** `wcagai worker`: scan workers only, against the queue at REDIS_URL. Resolves when shut down. */
export async function runWorker(flags: { concurrency?: number }): Promise<number> {
  const { config, logger, env } = runtimeFromEnv({}, 'wcagai-worker');
  const service = await startService(config, logger, { api: false, workerConcurrency: flags.concurrency ?? config.WORKER_CONCURRENCY, env });
  let exitCode = 0;
  await new Promise<void>((resolve) => {
    installProcessHandlers(logger, async (reason) => {
      if (reason === 'uncaughtException') exitCode = 1;
      await service.close();
      resolve();
    }, undefined, { forceAfterMs: config.SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE_MS });
  });
  return exitCode;
}
