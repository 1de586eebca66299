// A long-running command's process wiring, as `wcagai serve` and `wcagai worker` do it: the
// process handlers report to the error reporter, and shutdown closes (flushes) it. Then it
// leaves a rejection unhandled and throws from a timer. Run by test/observability/sentry-process.test.ts
// against dist/ (the test run builds it).
import { installProcessHandlers } from '../../dist/app/lifecycle.js';
import { createLogger } from '../../dist/observability/logger.js';
import { initErrorReporting } from '../../dist/observability/sentry.js';

const logger = createLogger({ level: 'info' });
const reporter = await initErrorReporting({ dsn: process.env.SENTRY_DSN, logger });
installProcessHandlers(
  logger,
  async () => {
    await reporter.close(2_000);
  },
  (err) => reporter.capture(err),
);
void Promise.reject(new Error('a rejection nobody handled'));
setTimeout(() => {
  throw new Error('thrown from a timer');
}, 200);
setInterval(() => undefined, 1_000);
