import type { Logger } from 'pino';
import { currentContext, outsideContext } from '../observability/context.js';

/**
 * What a shutdown may take beyond SHUTDOWN_TIMEOUT (the deadline of in-flight requests and active scans):
 * releasing scans, closing the browser, Redis and the error reporter. Past it, `serve` and `worker` exit anyway.
 */
export const SHUTDOWN_GRACE_MS = 10_000;

export interface ProcessHandlerOptions {
  /**
   * Backstop for a shutdown that never finishes (a close waiting on an unreachable Redis, say):
   * past this many ms after it started, log `shutdown.timeout` and exit 1.
   */
  forceAfterMs?: number;
}

/**
 * Process safety for long-running commands: SIGTERM/SIGINT start the ordered shutdown (a second
 * signal forces exit); an uncaught exception is logged with 💥 and shuts down with exit 1 (one
 * during a shutdown already running lets it finish, then exits 1); an unhandled rejection is
 * logged with 💥 and the process carries on. `onError` is told of both.
 */
export function installProcessHandlers(
  logger: Logger,
  shutdown: (reason: string) => Promise<void>,
  onError?: (err: unknown, kind: 'uncaughtException' | 'unhandledRejection') => void,
  options: ProcessHandlerOptions = {},
): () => void {
  let stopping = false;
  let exitCode = 0;
  const stop = (reason: string, code: number) => {
    if (stopping && reason === 'uncaughtException') {
      // An exception thrown while the shutdown runs (a connection closed under a pending call, say)
      // is no second signal: the shutdown goes on, releasing scans and closing the browser, and
      // the process exits 1 once it is done.
      exitCode = 1;
      logger.warn({ event: 'shutdown.continues', reason }, 'the shutdown goes on; the exit code will be 1');
      return;
    }
    if (stopping) {
      logger.warn({ event: 'shutdown.forced', reason }, 'second signal: exiting now');
      logger.flush?.();
      process.exit(code === 0 ? 1 : code);
    }
    stopping = true;
    exitCode = code;
    logger.info({ event: 'shutdown.start', reason }, 'shutting down');
    const { forceAfterMs } = options;
    if (forceAfterMs !== undefined) {
      setTimeout(() => {
        logger.error({ event: 'shutdown.timeout', reason, forceAfterMs }, `shutdown did not finish within ${forceAfterMs} ms: exiting`);
        logger.flush?.();
        setTimeout(() => process.exit(1), 100).unref();
      }, forceAfterMs).unref();
    }
    shutdown(reason)
      .then(() => {
        logger.info({ event: 'shutdown.done', reason }, 'shutdown complete');
      })
      .catch((err: unknown) => {
        logger.error({ event: 'shutdown.error', err }, 'shutdown failed');
        exitCode = 1;
      })
      .finally(() => {
        logger.flush?.();
        // Give the async log destinations a moment to drain before exiting.
        setTimeout(() => process.exit(exitCode), 100).unref();
      });
  };
  const onSigterm = () => stop('SIGTERM', 0);
  const onSigint = () => stop('SIGINT', 0);
  const onUncaught = (err: Error) => {
    logger.fatal({ event: 'process.uncaughtException', err, ...currentContext() }, `💥 uncaught exception: ${err.message}`);
    onError?.(err, 'uncaughtException');
    // The crash line names the request or job that threw; the shutdown it starts is the whole
    // process's, so its lines (and everything it closes) must not carry that request's ids.
    outsideContext(() => stop('uncaughtException', 1));
  };
  const onUnhandled = (reason: unknown) => {
    const message = reason instanceof Error ? reason.message : String(reason);
    logger.error({ event: 'process.unhandledRejection', err: reason, ...currentContext() }, `💥 unhandled rejection: ${message}`);
    onError?.(reason, 'unhandledRejection');
  };
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
  return () => {
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUnhandled);
  };
}
