import { setTimeout as sleep } from 'node:timers/promises';

/** What /health/detailed says at one moment (fields absent from the answer are null). */
export interface HealthSample {
  /** ms since the monitor started. */
  t: number;
  /** healthy, degraded, unhealthy, or unreachable when there was no readable answer. */
  status: string;
  /** The answer was the detailed view (queue, memory, sections), not the plain /health. */
  detailed: boolean;
  rssMb: number | null;
  heapMb: number | null;
  /** waiting + active scans. */
  queueDepth: number | null;
  eventLoopP99Ms: number | null;
  dlqSize: number | null;
  /** Breaker name -> state (CLOSED, OPEN, …), when the deployment reports breakers. */
  breakers: Record<string, string> | null;
  /** RSS of the Chromium process tree, when the stack can measure it. */
  chromiumRssMb: number | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

/** Reads a /health/detailed body, tolerating sections a deployment does not have. */
export function readHealth(body: unknown, t: number): HealthSample {
  const b = obj(body) ?? {};
  const memory = obj(obj(b.system)?.memory);
  const queue = obj(b.queue);
  const waiting = num(queue?.waiting);
  const active = num(queue?.active);
  const services = obj(obj(b.circuitBreakers)?.services);
  let breakers: Record<string, string> | null = null;
  if (services) {
    breakers = {};
    for (const [name, s] of Object.entries(services)) breakers[name] = String(obj(s)?.state ?? 'unknown');
  }
  return {
    t,
    status: typeof b.status === 'string' ? b.status : 'unreachable',
    detailed: obj(b.system) !== null || 'queue' in b,
    rssMb: num(memory?.rss),
    heapMb: num(memory?.heapUsed),
    queueDepth: waiting !== null || active !== null ? (waiting ?? 0) + (active ?? 0) : null,
    eventLoopP99Ms: num(obj(b.system)?.eventLoopDelayP99Ms),
    dlqSize: num(obj(b.dlq)?.size),
    breakers,
    chromiumRssMb: null,
  };
}

export interface HealthProbeOptions {
  baseUrl: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Adds figures the API cannot report itself (the Chromium tree of a local stack). */
  extra?: () => Partial<Pick<HealthSample, 'chromiumRssMb'>>;
}

/** One GET /health/detailed (503 bodies are read too: they still describe the service). */
export function healthProbe(options: HealthProbeOptions): (t: number) => Promise<HealthSample> {
  const get = (path: string) => fetch(new URL(path, options.baseUrl), { headers: options.headers ?? {}, signal: AbortSignal.timeout(options.timeoutMs ?? 2_000) });
  return async (t) => {
    let sample: HealthSample;
    try {
      let res = await get('/health/detailed');
      // A deployment without the detailed view: its plain status still tells healthy from not.
      if (res.status === 404) res = await get('/health');
      sample = readHealth(await res.json().catch(() => ({})), t);
    } catch {
      sample = readHealth({}, t);
    }
    return { ...sample, ...options.extra?.() };
  };
}

/** Samples once a second (never two probes at once) until stopped. */
export class HealthMonitor {
  readonly samples: HealthSample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly started = performance.now();

  constructor(
    private readonly probe: (t: number) => Promise<HealthSample>,
    private readonly intervalMs = 1_000,
    /** At most this many samples are kept (a 10-minute soak at 1/s is 600). */
    private readonly maxSamples = 36_000,
  ) {}

  latest(): HealthSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  start(): void {
    const tick = () => {
      const began = performance.now();
      this.running = this.probe(Math.round(began - this.started)).then((s) => {
        if (this.samples.length < this.maxSamples) this.samples.push(s);
      });
      // A fixed rate: a slow answer shortens the pause after it instead of stretching the interval.
      void this.running.finally(() => {
        if (this.timer !== null) this.timer = setTimeout(tick, Math.max(0, this.intervalMs - (performance.now() - began)));
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }
}

export interface Recovery {
  /** ms from the end of the load until the queue was empty; null when not within the deadline (or not reported). */
  drainedMs: number | null;
  /** ms until /health/detailed said healthy; null when not within the deadline. */
  healthyMs: number | null;
  deadlineMs: number;
  /** The last sample read. */
  last: HealthSample | null;
}

/**
 * Polls every `intervalMs` until the queue is empty and health is healthy, or the deadline passes
 * (or `signal` aborts: an interrupted run reads once and stops).
 * With `detailed`, a deployment that answered /health/detailed before must answer it again: a
 * plain or unreadable answer in between (a timeout under load) is not taken for recovery.
 */
export async function awaitRecovery(
  probe: (t: number) => Promise<HealthSample>,
  deadlineMs: number,
  options: { intervalMs?: number; detailed?: boolean; signal?: AbortSignal; loadEndedAt?: number } = {},
): Promise<Recovery> {
  const intervalMs = options.intervalMs ?? 250;
  // Times count from the end of the load (`loadEndedAt`, a performance.now() reading), not from
  // here: stopping the monitor first waits for its probe in flight, up to its timeout.
  const started = options.loadEndedAt ?? performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let drainedMs: number | null = null;
  let healthyMs: number | null = null;
  let last: HealthSample | null = null;
  for (;;) {
    const sample = await probe(elapsed());
    if (!options.detailed || sample.detailed) {
      last = sample;
      if (drainedMs === null && sample.queueDepth === 0) drainedMs = elapsed();
      if (healthyMs === null && sample.status === 'healthy') healthyMs = elapsed();
      if ((drainedMs !== null || sample.queueDepth === null) && healthyMs !== null) break;
    }
    // An interrupted run does not wait for recovery: one reading, for the breakers and the DLQ.
    if (elapsed() >= deadlineMs || options.signal?.aborted) break;
    // Cut short by the signal (its AbortError is the wake-up, not a failure).
    await sleep(intervalMs, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
    if (options.signal?.aborted) break;
  }
  return { drainedMs, healthyMs, deadlineMs, last };
}
