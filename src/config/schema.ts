import { z } from 'zod';

const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: 'expected an integer' })
    .int('expected an integer')
    .min(min, `expected an integer >= ${min}`)
    .max(max, `expected an integer <= ${max}`)
    .default(def);
const list = z
  .string()
  .default('')
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const optionalSecret = z.string().min(1).optional();

/** Durations like 30d, 15m, 10s, 500ms, or plain milliseconds. */
export function parseDuration(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * unit);
}
const duration = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 30s, 15m, 30d' });
        return z.NEVER;
      }
      return ms;
    });

/** Every setting wcagai reads from the environment, with its default. */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('production'),
  // Service
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(8080, 0, 65535),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected letters, digits, _ . -').default('wcagai'),
  WORKER_CONCURRENCY: int(2, 1, 64),
  SCAN_ATTEMPTS: int(3, 1, 20),
  SCAN_BACKOFF: duration('2s'),
  MAX_QUEUE_DEPTH: int(1000, 1),
  RESULT_TTL: duration('30d'),
  CACHE_TTL: duration('15m'),
  MAX_BATCH_URLS: int(1000, 1, 10_000),
  SHUTDOWN_TIMEOUT: duration('30s'),
  // Scan engine
  ALLOW_PRIVATE_TARGETS: bool(false),
  SCAN_ALLOWED_HOSTS: list,
  SCAN_TIMEOUT: duration('60s'),
  NAVIGATION_TIMEOUT: duration('30s'),
  AXE_TIMEOUT: duration('30s'),
  SETTLE_MAX: duration('5s'),
  SETTLE_QUIET: duration('100ms'),
  BROWSER_MAX_SCANS: int(1000, 0),
  BROWSER_MAX_RSS_MB: int(2048, 0),
  PUPPETEER_EXECUTABLE_PATH: z.string().optional(),
  CHROMIUM_PATH: z.string().optional(),
  // Access control and limits
  ADMIN_TOKEN: z.string().min(16, 'expected at least 16 characters').optional(),
  API_KEYS: list,
  METRICS_TOKEN: optionalSecret,
  RATE_LIMIT_MAX: int(600, 0),
  RATE_LIMIT_WINDOW: duration('1m'),
  BODY_LIMIT: int(65_536, 1_024),
  // Observability
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FILE: z.string().optional(),
  LOG_PRETTY: bool(true),
  SENTRY_DSN: z.string().url('expected a URL').optional(),
  MAX_EVENT_LOOP_DELAY: duration('1s'),
  MAX_HEAP_MB: int(0, 0),
  MAX_RSS_MB: int(0, 0),
});

export type Config = Readonly<z.output<typeof envSchema>>;

/** Names of settings whose values must never be printed or logged. */
export const SECRET_KEYS = ['ADMIN_TOKEN', 'API_KEYS', 'METRICS_TOKEN', 'SENTRY_DSN', 'REDIS_URL'] as const;
