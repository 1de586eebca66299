import { isIP } from 'node:net';
import { constants } from 'node:fs';
import { z } from 'zod';
import { canAccess } from './files.js';
import { MAX_TIMER_WAIT_MS, parseBoolSetting } from './values.js';
import { hasUserInfo } from './secrets.js';

/** A transform that reads a setting with `parse`; a value it refuses (null) is an issue saying `expected`. */
function readWith<T>(parse: (value: string) => T | null, expected: string) {
  return (value: string, ctx: z.RefinementCtx): T => {
    const read = parse(value);
    if (read !== null) return read;
    ctx.addIssue({ code: 'custom', message: expected });
    return z.NEVER;
  };
}

// Values of blanks only never reach these: loadConfig drops them, so they take their default.
const bool = (def: boolean) =>
  z
    .string()
    .default(def ? 'true' : 'false')
    .transform(readWith(parseBoolSetting, 'expected true or false (or 1/0, yes/no)'));
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
/**
 * A token clients send as `Authorization: Bearer <token>`: one word. Surrounding blanks (the
 * newline a secret file ends with) are dropped; blanks inside are refused, since no client could
 * send them in the header and every request would be refused with nothing said at start.
 */
const bearerToken = (min: number) =>
  z
    .string()
    .trim()
    .min(min, `expected at least ${min} characters`)
    .regex(/^\S*$/, 'expected no blanks inside (a bearer token is one word)')
    .optional();
/**
 * TRUST_PROXY as Fastify's `trustProxy` takes it: false (the default: X-Forwarded-For is ignored,
 * the client is the peer), true (whoever connects is a proxy), or the proxies' addresses and CIDR
 * ranges (and proxy-addr's `loopback`, `linklocal`, `uniquelocal`). No hop count: Fastify trusts
 * none by count, since a count cannot tell a proxy from a client that sends enough hops itself.
 */
export function parseTrustProxy(value: string): boolean | string[] | null {
  const v = value.trim();
  if (v === '' || /^false$/i.test(v)) return false;
  if (/^true$/i.test(v)) return true;
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  const known = (p: string) => {
    if (['loopback', 'linklocal', 'uniquelocal'].includes(p)) return true;
    const [address, bits, extra] = p.split('/');
    const family = isIP(address ?? '');
    if (!family || extra !== undefined) return false;
    return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  };
  return parts.length && parts.every(known) ? parts : null;
}

/** Comma list of `host:port` (IPv6 in brackets: `[::1]:26379`). */
const hostPorts = list.pipe(
  z.array(
    z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'expected a comma list of host:port'),
  ),
);

/** The longest a Node timer waits (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Whether a duration names its unit (`30d`, not `30`): destructive commands insist on one. */
export function hasDurationUnit(value: string): boolean {
  return /(ms|s|m|h|d)\s*$/.test(value.trim());
}

/** Durations like 30d, 15m, 10s, 500ms, or plain milliseconds. */
export function parseDuration(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Math.round(Number(m[1]) * unit);
}
const readDuration = readWith(parseDuration, 'expected a duration such as 500ms, 30s, 15m, 30d');
const duration = (def: string) => z.string().default(def).transform(readDuration);
/**
 * A duration that deletes what is older than it (DLQ_RETENTION): its unit is required, as for
 * `wcagai dlq purge`, since a bare number is milliseconds and the scheduled purge would then
 * remove every entry moments after it was captured.
 */
const ageDuration = (def: string) =>
  z
    .string()
    .default(def)
    .transform(readWith((v) => (hasDurationUnit(v) ? parseDuration(v) : null), 'expected a duration with its unit such as 12h or 30d (a bare number would be milliseconds)'))
    .refine((ms) => ms >= 60_000, 'expected at least 1m');
const TIMER_TOO_LONG = 'expected at most 24d (a timer cannot wait longer)';
/** A duration that a timer waits for (a deadline, an interval, a backoff). */
const timerDuration = (def: string) => duration(def).refine((ms) => ms <= MAX_TIMER_WAIT_MS, TIMER_TOO_LONG);
/** A duration that may be left unset (the code then derives it); a timer waits for it. */
const optionalDuration = z
  .string()
  .optional()
  .transform((v, ctx) => (v === undefined ? undefined : readDuration(v, ctx)))
  .refine((ms) => ms === undefined || ms <= MAX_TIMER_WAIT_MS, TIMER_TOO_LONG);
/** A timer setting that 0 or a few milliseconds would turn into a busy loop or instant failures: at least 100ms. */
const shortestTimer = (def: string) => timerDuration(def).refine((ms) => ms >= 100, 'expected at least 100ms');

const url = z.string().url('expected a URL');
/**
 * The URL of an external service wcagai calls: no `user:password@`, which fetch refuses to send
 * (every call would fail, and count against the breaker); the credentials have settings of their own.
 */
// A value that is no URL at all is refused as such, once.
const serviceUrl = (credentials: string) =>
  url.refine((v) => !URL.canParse(v) || !hasUserInfo(v), `expected a URL without user:password@ (never sent; ${credentials})`);
const decimal = (def: number, min = 0) => z.coerce.number({ error: 'expected a number' }).min(min, `expected a number >= ${min}`).default(def);
export const ALERT_SEVERITIES = ['info', 'warning', 'error', 'critical'] as const;

/** The external services wcagai calls, each behind its own resilience policy. */
export const SERVICE_PREFIXES = ['AI', 'APOLLO', 'HUBSPOT', 'SLACK', 'PAGERDUTY'] as const;
export type ServicePrefix = (typeof SERVICE_PREFIXES)[number];
type Duration = ReturnType<typeof duration>;
type Int = ReturnType<typeof int>;

/** <P>_TIMEOUT, _ATTEMPTS, _BACKOFF, _BREAKER_FAILURES, _BREAKER_HALF_OPEN, _CONCURRENCY of one service. */
function servicePolicy<P extends ServicePrefix>(p: P, d: { timeout: string; attempts: number; concurrency: number }) {
  return {
    // A deadline, not a limit that 0 lifts: 0 would fail every call at once and open the breaker.
    [`${p}_TIMEOUT`]: shortestTimer(d.timeout),
    [`${p}_ATTEMPTS`]: int(d.attempts, 1, 10),
    [`${p}_BACKOFF`]: timerDuration('250ms'),
    [`${p}_BREAKER_FAILURES`]: int(5, 1, 1_000),
    [`${p}_BREAKER_HALF_OPEN`]: duration('30s'),
    [`${p}_CONCURRENCY`]: int(d.concurrency, 1, 256),
  } as { [K in `${P}_TIMEOUT` | `${P}_BACKOFF` | `${P}_BREAKER_HALF_OPEN`]: Duration } & { [K in `${P}_ATTEMPTS` | `${P}_BREAKER_FAILURES` | `${P}_CONCURRENCY`]: Int };
}

/** The alert rules; each has ALERT_<RULE>_ENABLED, _THRESHOLD, _SEVERITY and _COOLDOWN. */
export const ALERT_RULES = ['ERROR_RATE', 'QUEUE_DEPTH', 'QUEUE_UTILIZATION', 'BREAKER_OPEN', 'DLQ_GROWTH', 'RSS', 'WORKERS_MISSING'] as const;
export type AlertRuleName = (typeof ALERT_RULES)[number];
type Severity = z.ZodDefault<z.ZodEnum<{ [K in (typeof ALERT_SEVERITIES)[number]]: K }>>;

function alertRule<R extends AlertRuleName>(r: R, d: { threshold: number; severity: (typeof ALERT_SEVERITIES)[number] }) {
  return {
    [`ALERT_${r}_ENABLED`]: bool(true),
    [`ALERT_${r}_THRESHOLD`]: decimal(d.threshold),
    [`ALERT_${r}_SEVERITY`]: z.enum(ALERT_SEVERITIES).default(d.severity),
    [`ALERT_${r}_COOLDOWN`]: duration('15m'),
  } as { [K in `ALERT_${R}_ENABLED`]: ReturnType<typeof bool> } & { [K in `ALERT_${R}_THRESHOLD`]: ReturnType<typeof decimal> } & { [K in `ALERT_${R}_SEVERITY`]: Severity } & {
    [K in `ALERT_${R}_COOLDOWN`]: Duration;
  };
}

/** Every setting wcagai reads from the environment, with its default. */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('production'),
  // Service
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(8080, 0, 65535),
  /**
   * How long an idle keep-alive connection stays open. Longer than a load balancer's idle timeout
   * (60 s for AWS ALB and nginx), so the balancer, not the server, closes it: a server that closes
   * first races the balancer's next request on that connection, which the client sees as a 502.
   */
  HTTP_KEEP_ALIVE_TIMEOUT: duration('72s').refine((ms) => ms >= 1_000 && ms <= 600_000, 'expected between 1s and 10m'),
  /** `wcagai worker`: serve /health/live, /health/ready, /health and /health/detailed on this port (HOST) when set; 0 = none. */
  WORKER_HEALTH_PORT: int(0, 0, 65535),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
  /** How long the API's Redis gate waits for a PING before it takes Redis for hung and fails its commands at once. */
  REDIS_PING_TIMEOUT: shortestTimer('1500ms'),
  /** Sentinel mode: the sentinels to ask for the master of REDIS_SENTINEL_NAME (REDIS_URL then gives only credentials, db and TLS). */
  REDIS_SENTINELS: hostPorts,
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  REDIS_SENTINEL_PASSWORD: optionalSecret,
  /** Cluster mode: seed nodes (REDIS_URL then gives only credentials and TLS). */
  REDIS_CLUSTER_NODES: hostPorts,
  /** rediss://: a PEM file of the certificate authorities to trust (a private CA); unset: the system's. */
  REDIS_TLS_CA: z.string().min(1).optional(),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected letters, digits, _ . -').default('wcagai'),
  WORKER_CONCURRENCY: int(4, 1, 64),
  SCAN_ATTEMPTS: int(3, 1, 20),
  SCAN_BACKOFF: duration('2s'),
  MAX_QUEUE_DEPTH: int(1000, 1),
  // Redis refuses a zero expiry: every final record would fail to be stored.
  RESULT_TTL: duration('30d').refine((ms) => ms >= 1_000, 'expected at least 1s'),
  CACHE_TTL: duration('15m'),
  MAX_BATCH_URLS: int(1000, 1, 10_000),
  SHUTDOWN_TIMEOUT: timerDuration('30s'),
  DLQ_RETENTION: ageDuration('30d'),
  /** BullMQ job lock; unset: derived from SCAN_TIMEOUT (scan timeout + 15 s, at least 30 s). */
  WORKER_LOCK_DURATION: optionalDuration,
  /** How often workers check for stalled jobs; unset: min(30 s, lock duration). */
  WORKER_STALLED_INTERVAL: optionalDuration,
  // Scan engine
  ALLOW_PRIVATE_TARGETS: bool(false),
  // Host names or addresses, optionally with a port or a `*.` prefix; not URLs (a listed URL would allow nothing, in silence).
  SCAN_ALLOWED_HOSTS: list.pipe(z.array(z.string().regex(/^(\*\.)?([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/, 'expected a comma list of hosts such as staging.example.com, *.example.com, 10.0.0.5:8080'))),
  // Deadlines, not limits that 0 turns off: a zero scan or axe deadline fails every scan at once.
  SCAN_TIMEOUT: timerDuration('60s').refine((ms) => ms >= 1_000, 'expected at least 1s'),
  NAVIGATION_TIMEOUT: timerDuration('30s').refine((ms) => ms >= 1_000, 'expected at least 1s'),
  AXE_TIMEOUT: timerDuration('30s').refine((ms) => ms >= 1_000, 'expected at least 1s'),
  SETTLE_MAX: timerDuration('5s'),
  SETTLE_QUIET: timerDuration('100ms'),
  BROWSER_MAX_SCANS: int(1000, 0),
  BROWSER_MAX_RSS_MB: int(2048, 0),
  BROWSER_GC_HEAP_MB: int(128, 0),
  BROWSER_CONTEXTS: z.enum(['shared', 'per-slot']).default('shared'),
  PUPPETEER_EXECUTABLE_PATH: z.string().optional(),
  CHROMIUM_PATH: z.string().optional(),
  // Access control and limits
  ADMIN_TOKEN: bearerToken(16),
  API_KEYS: list,
  METRICS_TOKEN: bearerToken(1),
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform(readWith(parseTrustProxy, 'expected false, true, or proxy addresses and CIDR ranges such as 10.0.0.0/8, 192.168.1.10')),
  RATE_LIMIT_MAX: int(600, 0),
  RATE_LIMIT_WINDOW: duration('1m').refine((ms) => ms >= 1_000, 'expected at least 1s'),
  BODY_LIMIT: int(65_536, 1_024),
  // Observability
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FILE: z.string().optional(),
  LOG_PRETTY: bool(true),
  SENTRY_DSN: z.string().url('expected a URL').optional(),
  MAX_EVENT_LOOP_DELAY: duration('1s'),
  MAX_HEAP_MB: int(0, 0),
  MAX_RSS_MB: int(0, 0),
  // External services: clients, their resilience policies, alerts
  WCAGAI_URL: url.optional(),
  AI_ENABLED: bool(false),
  AI_BASE_URL: serviceUrl('the key goes in AI_API_KEY').default('https://api.openai.com/v1'),
  AI_API_KEY: optionalSecret,
  AI_MODEL: z.string().min(1).default('gpt-4o-mini'),
  AI_MAX_TOKENS: int(800, 16, 8_192),
  AI_MAX_RULES: int(20, 1, 100),
  APOLLO_BASE_URL: serviceUrl('the key goes in APOLLO_API_KEY').default('https://api.apollo.io'),
  APOLLO_API_KEY: optionalSecret,
  HUBSPOT_BASE_URL: serviceUrl('the token goes in HUBSPOT_TOKEN').default('https://api.hubapi.com'),
  HUBSPOT_TOKEN: optionalSecret,
  HUBSPOT_SYNC: bool(false),
  // HubSpot's search API takes about 5 calls a second per account; per process (0: no limit).
  HUBSPOT_RATE_PER_SECOND: decimal(4, 0),
  SLACK_WEBHOOK_URL: serviceUrl('a webhook URL carries its secret in its path').optional(),
  PAGERDUTY_ROUTING_KEY: optionalSecret,
  PAGERDUTY_EVENTS_URL: serviceUrl('the key goes in PAGERDUTY_ROUTING_KEY').default('https://events.pagerduty.com/v2/enqueue'),
  ...servicePolicy('AI', { timeout: '20s', attempts: 2, concurrency: 4 }),
  ...servicePolicy('APOLLO', { timeout: '10s', attempts: 3, concurrency: 2 }),
  ...servicePolicy('HUBSPOT', { timeout: '10s', attempts: 3, concurrency: 4 }),
  ...servicePolicy('SLACK', { timeout: '5s', attempts: 3, concurrency: 2 }),
  ...servicePolicy('PAGERDUTY', { timeout: '5s', attempts: 3, concurrency: 2 }),
  ALERTS_ENABLED: bool(true),
  // 0 would evaluate without pause (a timer of 0 fires at once, again and again).
  ALERTS_INTERVAL: shortestTimer('10s'),
  ALERT_ERROR_RATE_WINDOW: duration('5m'),
  ALERT_ERROR_RATE_MIN_SCANS: int(10, 1),
  ALERT_RESOLVE_AFTER: duration('1m'),
  ...alertRule('ERROR_RATE', { threshold: 10, severity: 'warning' }),
  ...alertRule('QUEUE_DEPTH', { threshold: 100, severity: 'critical' }),
  ...alertRule('QUEUE_UTILIZATION', { threshold: 80, severity: 'warning' }),
  ...alertRule('BREAKER_OPEN', { threshold: 1, severity: 'error' }),
  ...alertRule('DLQ_GROWTH', { threshold: 10, severity: 'error' }),
  ...alertRule('RSS', { threshold: 1024, severity: 'warning' }),
  ...alertRule('WORKERS_MISSING', { threshold: 1, severity: 'critical' }),
}).superRefine((env, ctx) => {
  // These need other settings' final values. They run even when some other setting is bad (every
  // bad value is reported at once), so a setting that did not parse is skipped here, not trusted.
  const sentinels = Array.isArray(env.REDIS_SENTINELS) ? env.REDIS_SENTINELS : [];
  const clusterNodes = Array.isArray(env.REDIS_CLUSTER_NODES) ? env.REDIS_CLUSTER_NODES : [];
  const redisUrl = typeof env.REDIS_URL === 'string' && /^rediss?:\/\//.test(env.REDIS_URL) ? env.REDIS_URL : null;
  if (sentinels.length && clusterNodes.length) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'set REDIS_SENTINELS or REDIS_CLUSTER_NODES, not both (Sentinel and Cluster are different deployments)' });
  }
  const db = redisUrl === null ? undefined : /^rediss?:\/\/[^/]*\/(\d+)/.exec(redisUrl)?.[1];
  if (clusterNodes.length && db !== undefined && Number(db) !== 0) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'Redis Cluster has only database 0: drop the /db part of REDIS_URL' });
  }
  if (typeof env.REDIS_TLS_CA === 'string' && redisUrl !== null) {
    if (!redisUrl.startsWith('rediss://')) ctx.addIssue({ code: 'custom', path: ['REDIS_TLS_CA'], message: 'only used with TLS: REDIS_URL must start with rediss://' });
    else if (!canAccess(env.REDIS_TLS_CA, constants.R_OK)) ctx.addIssue({ code: 'custom', path: ['REDIS_TLS_CA'], message: `cannot read ${env.REDIS_TLS_CA}` });
  }
}, { when: () => true });

export type Config = Readonly<z.output<typeof envSchema>>;

/** Names of settings whose values must never be printed or logged. */
export const SECRET_KEYS = ['ADMIN_TOKEN', 'API_KEYS', 'METRICS_TOKEN', 'SENTRY_DSN', 'REDIS_URL', 'REDIS_SENTINEL_PASSWORD', 'AI_API_KEY', 'APOLLO_API_KEY', 'HUBSPOT_TOKEN', 'SLACK_WEBHOOK_URL', 'PAGERDUTY_ROUTING_KEY'] as const;
