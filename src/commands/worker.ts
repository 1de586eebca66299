import { SHUTDOWN_GRACE_MS } from '../app/lifecycle.js';
import { runtimeFromEnv } from '../app/runtime.js';
import { startService } from '../app/service.js';
import { listenOrStop } from './listen.js';
import { runService } from './run-service.js';

/**
 * `wcagai worker`: scan workers only, against the queue at REDIS_URL, and with `--health-port`
 * (WORKER_HEALTH_PORT) the health endpoints on HOST. Resolves when shut down.
 */
export async function runWorker(flags: { concurrency?: number; healthPort?: number }): Promise<number> {
  const { config, logger, env } = runtimeFromEnv(flags.healthPort !== undefined ? { WORKER_HEALTH_PORT: String(flags.healthPort) } : {}, 'wcagai-worker');
  const healthServer = config.WORKER_HEALTH_PORT > 0;
  const start = () => startService(config, logger, { api: false, healthServer, workerConcurrency: flags.concurrency ?? config.WORKER_CONCURRENCY, env });
  return runService(logger, config.SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE_MS, start, async (service, removeHandlers) => {
    if (!healthServer || !service.app) return;
    const address = await listenOrStop(service, service.app, config.HOST, config.WORKER_HEALTH_PORT, removeHandlers);
    logger.info({ event: 'worker.health_listening', address }, `worker health on ${address}/health/ready`);
  });
}
