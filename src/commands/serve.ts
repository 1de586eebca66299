import { SHUTDOWN_GRACE_MS } from '../app/lifecycle.js';
import { runtimeFromEnv } from '../app/runtime.js';
import { startService } from '../app/service.js';
import { isRefusedPort, refusedPortMessage } from '../tui/client.js';
import { listenOrStop } from './listen.js';
import { runService } from './run-service.js';

export interface ServeFlags {
  port?: number;
  host?: string;
  workers?: number;
  worker: boolean;
}

/**
 * Whether fetch refuses `port` outright (the Fetch standard's "bad ports": 6000, 6666, 10080…), as
 * browsers do: asked of fetch itself, whose list it is, through a dispatcher that never connects
 * (fetch checks the port before it hands the request over). False when it would have connected.
 */
export async function fetchRefusesPort(port: number): Promise<boolean> {
  const noConnection = {
    dispatch(): never {
      throw new Error('port check: no connection is made');
    },
  };
  try {
    await fetch(`http://127.0.0.1:${port}/`, { dispatcher: noConnection, signal: AbortSignal.timeout(2_000) } as RequestInit);
  } catch (err) {
    return isRefusedPort(err);
  }
  return false;
}

/** `wcagai serve`: the API plus, unless --no-worker, an embedded worker. Resolves when shut down. */
export async function runServe(flags: ServeFlags): Promise<number> {
  const overrides: Record<string, string> = {};
  if (flags.port !== undefined) overrides.PORT = String(flags.port);
  if (flags.host) overrides.HOST = flags.host;
  const { config, logger, env } = runtimeFromEnv(overrides, 'wcagai');
  // Not an error (curl and other clients still connect), but wcagai's own clients cannot.
  if (config.PORT > 0 && (await fetchRefusesPort(config.PORT))) {
    process.stderr.write(`wcagai: warning: ${refusedPortMessage(`http://127.0.0.1:${config.PORT}/`, 'browsers and HTTP clients (wcagai top, stress, dlq --url)')}\n`);
  }
  const concurrency = flags.worker ? (flags.workers ?? config.WORKER_CONCURRENCY) : 0;
  return runService(logger, config.SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE_MS, () => startService(config, logger, { api: true, workerConcurrency: concurrency, env }), async (service, removeHandlers) => {
    const address = await listenOrStop(service, service.app!, config.HOST, config.PORT, removeHandlers);
    logger.info({ event: 'serve.listening', address, worker: concurrency > 0, concurrency }, `wcagai listening on ${address}`);
  });
}
