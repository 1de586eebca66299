import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type DestinationStream, type Logger } from 'pino';
import { currentContext } from './context.js';

export interface LoggerOptions {
  level: string;
  /** Also append JSON lines to this file (directory created). */
  file?: string;
  /** Human-readable output on stdout (pino-pretty), for terminals. */
  pretty?: boolean;
  /** Where JSON lines go instead of stdout (tests read lines from a sink). */
  destination?: DestinationStream;
  name?: string;
}

/** Secrets never reach a log line, wherever they appear. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  '*.authorization',
  '*.apiKey',
  '*.api_key',
  '*.token',
  '*.password',
  '*.secret',
  'config.ADMIN_TOKEN',
  'config.API_KEYS',
  'config.METRICS_TOKEN',
  'config.SENTRY_DSN',
  'config.REDIS_URL',
  'config.REDIS_SENTINEL_PASSWORD',
  'config.AI_API_KEY',
  'config.APOLLO_API_KEY',
  'config.HUBSPOT_TOKEN',
  'config.SLACK_WEBHOOK_URL',
  'config.PAGERDUTY_ROUTING_KEY',
  '*.routing_key',
  '*.webhookUrl',
];

/** pino with the request context (requestId, jobId) mixed into every line. */
export function createLogger(options: LoggerOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (options.destination) streams.push({ level: options.level as pino.Level, stream: options.destination });
  else if (options.pretty) {
    streams.push({ level: options.level as pino.Level, stream: pino.transport({ target: 'pino-pretty', options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l' } }) });
  } else streams.push({ level: options.level as pino.Level, stream: pino.destination({ dest: 1, sync: false }) });
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true });
    streams.push({ level: options.level as pino.Level, stream: pino.destination({ dest: options.file, sync: false, mkdir: true }) });
  }
  return pino(
    {
      level: options.level,
      ...(options.name ? { name: options.name } : {}),
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      mixin: (_object, _level, logger) => {
        const ctx = currentContext();
        if (!ctx) return {};
        // A child logger may already bind these (Fastify's request logger, the processor's job logger):
        // adding them again would write the key twice in one JSON line, which some log stores refuse.
        const bound = String((logger as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym] ?? '');
        const out: Record<string, string> = {};
        if (ctx.requestId && !bound.includes('"requestId":')) out.requestId = ctx.requestId;
        if (ctx.traceId && !bound.includes('"traceId":')) out.traceId = ctx.traceId;
        if (ctx.jobId && !bound.includes('"jobId":')) out.jobId = ctx.jobId;
        return out;
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.multistream(streams),
  );
}
