import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { currentContext } from './context.js';
import { textForLog } from './redact.js';

export interface CaptureContext {
  requestId?: string;
  jobId?: string;
  tags?: Record<string, string | number | boolean>;
}

/** Where unexpected errors are reported; never throws, whatever the backend does. */
export interface ErrorReporter {
  /** True when events actually leave the process (a DSN was given and the SDK loaded). */
  readonly enabled: boolean;
  capture(err: unknown, ctx?: CaptureContext): void;
  /** Waits up to `ms` for queued events to be sent; false when some were not. */
  flush(ms: number): Promise<boolean>;
  /** Flushes, then releases the SDK's timers and process listeners (last step of shutdown). */
  close(ms: number): Promise<boolean>;
}

export interface ErrorReportingOptions {
  /** SENTRY_DSN; without it nothing is loaded and nothing is sent. */
  dsn?: string;
  release?: string;
  environment?: string;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/** A reporter that drops everything: the default when no DSN is configured. */
export const noopReporter: ErrorReporter = {
  enabled: false,
  capture: () => undefined,
  flush: async () => true,
  close: async () => true,
};

/**
 * Builds the error reporter. @sentry/node (and the OpenTelemetry it pulls in) is imported only
 * when a DSN is given, so commands like `wcagai --help` never pay for loading it. A private
 * client and scope are used instead of Sentry.init(): no global handlers, no instrumentation,
 * no OpenTelemetry provider, nothing sent anywhere but the DSN.
 */
export async function initErrorReporting(options: ErrorReportingOptions): Promise<ErrorReporter> {
  if (!options.dsn) return noopReporter;
  let sentry: typeof import('@sentry/node');
  try {
    sentry = await import('@sentry/node');
  } catch (err) {
    options.logger.warn({ event: 'sentry.unavailable', err }, 'error reporting disabled: @sentry/node could not be loaded');
    return noopReporter;
  }
  const client = new sentry.NodeClient({
    dsn: options.dsn,
    ...(options.release ? { release: options.release } : {}),
    ...(options.environment ? { environment: options.environment } : {}),
    transport: sentry.makeNodeTransport,
    stackParser: sentry.defaultStackParser,
    // Only what capture needs: Error.cause chains and dropping repeats of the same error.
    integrations: [sentry.linkedErrorsIntegration(), sentry.dedupeIntegration()],
    tracesSampleRate: 0,
    sendClientReports: false,
    sendDefaultPii: false,
    // An error may quote a URL with its credentials (a page's `?token=`, a Redis password): the
    // event leaves the process with them masked, as the log writes them.
    beforeSend(event) {
      for (const value of event.exception?.values ?? []) if (typeof value.value === 'string') value.value = textForLog(value.value);
      if (typeof event.message === 'string') event.message = textForLog(event.message);
      return event;
    },
  });
  const scope = new sentry.Scope();
  scope.setClient(client);
  client.init();
  options.logger.info({ event: 'sentry.enabled', release: options.release, environment: options.environment }, 'error reporting enabled');

  return {
    enabled: true,
    capture(err, ctx = {}) {
      try {
        // Ids default to the current request or job, so callers deep in a flow need not pass them.
        const active = currentContext();
        const requestId = ctx.requestId ?? active?.requestId;
        const jobId = ctx.jobId ?? active?.jobId;
        const event = scope.clone();
        if (requestId) event.setTag('request_id', requestId);
        if (jobId) event.setTag('job_id', jobId);
        if (active?.traceId) event.setTag('trace_id', active.traceId);
        // Each event its own trace: the request's (traceparent) or a fresh one. A clone shares the
        // process scope's propagation context, so every event of a process had one trace id.
        event.setPropagationContext({ traceId: active?.traceId ?? randomBytes(16).toString('hex'), sampleRand: Math.random() });
        // Sentry indexes tags as strings; numbers would be kept as-is and not match string searches.
        for (const [k, v] of Object.entries(ctx.tags ?? {})) event.setTag(k, String(v));
        event.captureException(err);
      } catch {
        // Reporting is best effort: a broken reporter must never turn into a second failure.
      }
    },
    flush: async (ms) => client.flush(ms).then(Boolean, () => false),
    close: async (ms) => client.close(ms).then(Boolean, () => false),
  };
}
