import type { Logger } from 'pino';
import { installProcessHandlers } from '../app/lifecycle.js';
import type { Service } from '../app/service.js';

/**
 * Runs a long-running service (`serve`, `worker`) until it is shut down, and resolves to the exit
 * code. The process handlers are in before start-up begins: a SIGTERM or SIGINT during start-up
 * waits for it to finish (or fail), then closes what it started, instead of killing the process
 * with nothing closed. `onStarted` (listening, say) runs only when no shutdown began meanwhile.
 */
export async function runService(
  logger: Logger,
  forceAfterMs: number,
  start: () => Promise<Service>,
  onStarted: (service: Service, removeHandlers: () => void) => Promise<void>,
): Promise<number> {
  let exitCode = 0;
  let service: Service | null = null;
  let stopping = false;
  let removeHandlers: () => void = () => undefined;
  let starting!: Promise<Service>;
  const finished = new Promise<void>((resolve) => {
    removeHandlers = installProcessHandlers(
      logger,
      async (reason) => {
        stopping = true;
        if (reason === 'uncaughtException') exitCode = 1;
        const started = await starting.catch(() => null);
        await started?.close();
        resolve();
      },
      (err, kind) => {
        // An uncaught exception during a shutdown already running (a signal's) ends it with exit 1 too.
        if (kind === 'uncaughtException') exitCode = 1;
        service?.reporter.capture(err);
      },
      { forceAfterMs },
    );
  });
  starting = start();
  try {
    service = await starting;
  } catch (err) {
    // Unless a signal is already closing it, a start-up failure ends the command with its error.
    if (!stopping) removeHandlers();
    throw err;
  }
  if (!stopping) await onStarted(service, removeHandlers);
  await finished;
  return exitCode;
}
