import { randomBytes } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { startService, type Service } from '../../src/app/service.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';

/** One parsed JSON log line. */
export type LogEntry = Record<string, unknown> & { level: number; msg?: string; event?: string };

/** An in-memory pino destination: every line the service logs, parsed. */
export class LogSink {
  readonly entries: LogEntry[] = [];

  write(line: string): void {
    for (const part of line.split('\n')) {
      if (!part.trim()) continue;
      try {
        this.entries.push(JSON.parse(part) as LogEntry);
      } catch {
        this.entries.push({ level: 0, msg: part });
      }
    }
  }

  /** Entries whose `event` is `event` (and that match `where`, if given). */
  events(event: string, where: (e: LogEntry) => boolean = () => true): LogEntry[] {
    return this.entries.filter((e) => e.event === event && where(e));
  }
}

/** A unique queue prefix, so services in one Redis never see each other's keys. */
export function uniquePrefix(label = 't'): string {
  return `${label}_${randomBytes(5).toString('hex')}`;
}

/**
 * Settings every test service starts from: loopback targets allowed (fixture pages live on
 * 127.0.0.1), short deadlines and backoff, and no limiter that a polling test could trip over.
 */
export const TEST_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  NODE_ENV: 'test',
  ALLOW_PRIVATE_TARGETS: 'true',
  SCAN_TIMEOUT: '10s',
  NAVIGATION_TIMEOUT: '8s',
  AXE_TIMEOUT: '8s',
  SETTLE_MAX: '1s',
  SETTLE_QUIET: '50ms',
  SCAN_ATTEMPTS: '3',
  SCAN_BACKOFF: '100ms',
  SHUTDOWN_TIMEOUT: '5s',
  WORKER_CONCURRENCY: '2',
  RATE_LIMIT_MAX: '1000000',
  // Off: on a loaded 2-core machine a test process can go unscheduled for a whole sample interval,
  // which under-pressure reads as an infinite delay (503 OVERLOADED for the next request). The
  // tests of under-pressure set their own limits.
  MAX_EVENT_LOOP_DELAY: '0',
  LOG_LEVEL: 'info',
  LOG_PRETTY: 'false',
});

/** The environment a test service (or worker child) starts from: only what finding the browser needs. */
export function baseEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const name of ['PUPPETEER_EXECUTABLE_PATH', 'CHROMIUM_PATH', 'PUPPETEER_CACHE_DIR', 'TMPDIR']) if (process.env[name]) env[name] = process.env[name];
  return env;
}

export interface TestServiceOptions {
  redisUrl: string;
  /** Defaults to a new unique prefix. */
  prefix?: string;
  /** Serve the API (default true). */
  api?: boolean;
  /** Scan concurrency of the in-process worker; 0 (default) runs none. */
  worker?: number;
  /** Settings on top of TEST_SETTINGS. */
  settings?: Record<string, string>;
}

export interface JsonResponse<T = Record<string, any>> {
  status: number;
  headers: LightMyRequestResponse['headers'];
  body: string;
  json: T;
  ms: number;
}

type Headers = Record<string, string | undefined>;

function defined(headers: Headers): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined));
}

export interface TestService {
  service: Service;
  prefix: string;
  logs: LogSink;
  /** `app.inject`, with the body parsed as JSON when it is JSON. */
  request<T = Record<string, any>>(options: InjectOptions): Promise<JsonResponse<T>>;
  /** POST a JSON body. Headers whose value is undefined are left out. */
  post<T = Record<string, any>>(url: string, body: unknown, headers?: Headers): Promise<JsonResponse<T>>;
  get<T = Record<string, any>>(url: string, headers?: Headers): Promise<JsonResponse<T>>;
  /** Polls GET /api/scans/:id until its status is completed or failed. */
  finished(id: string, timeoutMs?: number): Promise<Record<string, any>>;
  close(): Promise<void>;
}

/** Starts `startService` against the test Redis with a per-test queue prefix and an in-memory log. */
export async function startTestService(options: TestServiceOptions): Promise<TestService> {
  const prefix = options.prefix ?? uniquePrefix();
  const logs = new LogSink();
  const env = baseEnv();
  const config = loadConfig(env, { ...TEST_SETTINGS, ...options.settings, REDIS_URL: options.redisUrl, QUEUE_PREFIX: prefix });
  const logger = createLogger({ level: config.LOG_LEVEL, destination: logs });
  const service = await startService(config, logger, { api: options.api ?? true, workerConcurrency: options.worker ?? 0, env });

  const request = async <T = Record<string, any>>(opts: InjectOptions): Promise<JsonResponse<T>> => {
    if (!service.app) throw new Error('this test service runs no API');
    const started = performance.now();
    const res = await service.app.inject(opts);
    const ms = performance.now() - started;
    let json: unknown = undefined;
    if (/json/.test(String(res.headers['content-type'] ?? ''))) json = JSON.parse(res.body);
    return { status: res.statusCode, headers: res.headers, body: res.body, json: json as T, ms };
  };
  const get = <T = Record<string, any>>(url: string, headers: Headers = {}) => request<T>({ method: 'GET', url, headers: defined(headers) });
  let closed: Promise<void> | null = null;
  return {
    service,
    prefix,
    logs,
    request,
    get,
    post: <T>(url: string, body: unknown, headers: Headers = {}) =>
      request<T>({ method: 'POST', url, headers: { 'content-type': 'application/json', ...defined(headers) }, payload: JSON.stringify(body) }),
    async finished(id, timeoutMs = 30_000) {
      return waitFor(
        async () => {
          const res = await get(`/api/scans/${id}`);
          if (res.status !== 200) throw new Error(`GET /api/scans/${id} answered ${res.status}: ${res.body}`);
          return res.json.status === 'completed' || res.json.status === 'failed' ? res.json : undefined;
        },
        { timeoutMs, what: `scan ${id} to finish` },
      );
    },
    close() {
      closed ??= service.close(5_000).then(() => undefined);
      return closed;
    },
  };
}

/** Polls `probe` until it returns something other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 100, what = 'condition' } = options;
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Job counts of a service's queue, every state BullMQ keeps. */
export async function jobCounts(service: Service): Promise<Record<string, number>> {
  return service.queue.getJobCounts('waiting', 'prioritized', 'paused', 'active', 'delayed', 'failed', 'completed');
}

/** Total jobs the queue holds in any state. */
export async function totalJobs(service: Service): Promise<number> {
  return Object.values(await jobCounts(service)).reduce((a, b) => a + b, 0);
}
