import type { Logger } from 'pino';
import { currentContext } from '../observability/context.js';

/**
 * Process safety for long-running commands: SIGTERM/SIGINT start the ordered shutdown (a second
 * signal forces exit); an uncaught exception is logged with 💥 and shuts down with exit 1;
 * an unhandled rejection is logged with 💥 and the process carries on.
 */
export function installProcessHandlers(logger: Logger, shutdown: (reason: string) => Promise<void>, onError?: (err: unknown) => void): () => void {
  let stopping = false;
  const stop = (reason: string, code: number) => {
    if (stopping) {
      logger.warn({ event: 'shutdown.forced', reason }, 'second signal: exiting now');
      logger.flush?.();
      process.exit(code === 0 ? 1 : code);
    }
    stopping = true;
    logger.info({ event: 'shutdown.start', reason }, 'shutting down');
    shutdown(reason)
      .then(() => {
        logger.info({ event: 'shutdown.done', reason }, 'shutdown complete');
      })
      .catch((err: unknown) => {
        logger.error({ event: 'shutdown.error', err }, 'shutdown failed');
        code = 1;
      })
      .finally(() => {
        logger.flush?.();
        // Give the async log destinations a moment to drain before exiting.
        setTimeout(() => process.exit(code), 100).unref();
      });
  };
  const onSigterm = () => stop('SIGTERM', 0);
  const onSigint = () => stop('SIGINT', 0);
  const onUncaught = (err: Error) => {
    logger.fatal({ event: 'process.uncaughtException', err, ...currentContext() }, `💥 uncaught exception: ${err.message}`);
    onError?.(err);
    stop('uncaughtException', 1);
  };
  const onUnhandled = (reason: unknown) => {
    const message = reason instanceof Error ? reason.message : String(reason);
    logger.error({ event: 'process.unhandledRejection', err: reason, ...currentContext() }, `💥 unhandled rejection: ${message}`);
    onError?.(reason);
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
