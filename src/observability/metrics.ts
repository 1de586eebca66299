import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PageTimings } from '../domain/scan.js';

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];
/** Job counts per state; `ScanProducer.capacity()` returns a superset of this shape. */
export type QueueCounts = Partial<Record<QueueState, number>>;

export type ScanOutcome = 'completed' | 'failed' | 'cached' | 'deduplicated';
export type ScanTimings = Pick<PageTimings, 'navigationMs' | 'settleMs' | 'axeMs' | 'totalMs'>;

/** Gauge values of `wcagai_circuit_breaker_state`. */
export const BREAKER_STATE = { closed: 0, 'half-open': 1, open: 2, isolated: 3 } as const;

export interface MetricsOptions {
  /** Read at scrape time to fill `wcagai_queue_jobs`; omitted in processes without a queue. */
  queueCounts?: (signal: AbortSignal) => Promise<QueueCounts>;
  /** A scrape never waits longer than this for queueCounts (Prometheus' own timeout is usually 10 s). */
  queueCountsTimeoutMs?: number;
  /** Node.js process metrics (RSS, heap, event-loop lag, GC); on by default. */
  defaultMetrics?: boolean;
  /** Read at scrape time for `wcagai_dlq_size`. */
  dlqSize?: (signal: AbortSignal) => Promise<number>;
  /** Read at scrape time for `wcagai_circuit_breaker_state` (values of BREAKER_STATE). */
  breakerStates?: () => Record<string, number>;
  /** Read at scrape time for `wcagai_alerts_firing`. */
  alertsFiring?: () => Record<string, number>;
  /** Read at scrape time for `wcagai_worker_circuit_breaker_state`: each worker process's breakers, from its heartbeat. */
  workerBreakers?: (signal: AbortSignal) => Promise<Array<{ process: string; service: string; state: number }>>;
}

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'route' | 'method' | 'status_code'>;
  httpRequests: Counter<'route' | 'method' | 'status_code'>;
  httpErrors: Counter<'code' | 'status_code'>;
  scans: Counter<'outcome'>;
  scanDuration: Histogram<'phase'>;
  queueJobs: Gauge<'state'>;
  dlqSize: Gauge;
  dlqCaptured: Counter<'code'>;
  circuitBreakerState: Gauge<'service'>;
  workerBreakerState: Gauge<'service' | 'process'>;
  alertsFiring: Gauge<'severity'>;
}

// Requests may hold up to 120 s with `Prefer: wait`, so the top buckets go that far.
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
// Phases range from a 50 ms axe run on a tiny page to the 60 s overall scan deadline.
const SCAN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90];

function withDeadline<T>(fn: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`queueCounts took longer than ${ms} ms`));
    }, ms);
  });
  return Promise.race([fn(controller.signal), deadline]).finally(() => clearTimeout(timer));
}

/** A private registry (never prom-client's global one) with every wcagai metric registered. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const { queueCounts, queueCountsTimeoutMs = 2_000 } = options;
  const metrics: Metrics = {
    registry,
    httpRequestDuration: new Histogram({
      name: 'wcagai_http_request_duration_seconds',
      help: 'HTTP request duration by route template, method and status code.',
      labelNames: ['route', 'method', 'status_code'],
      buckets: HTTP_BUCKETS,
      registers,
    }),
    httpRequests: new Counter({ name: 'wcagai_http_requests_total', help: 'HTTP requests answered.', labelNames: ['route', 'method', 'status_code'], registers }),
    httpErrors: new Counter({
      name: 'wcagai_http_errors_total',
      help: 'Error answers (status >= 400) by problem code; UNCODED when the answer was not a problem document.',
      labelNames: ['code', 'status_code'],
      registers,
    }),
    scans: new Counter({ name: 'wcagai_scans_total', help: 'Scans by outcome.', labelNames: ['outcome'], registers }),
    scanDuration: new Histogram({ name: 'wcagai_scan_duration_seconds', help: 'Scan duration by phase.', labelNames: ['phase'], buckets: SCAN_BUCKETS, registers }),
    queueJobs: new Gauge({
      name: 'wcagai_queue_jobs',
      help: 'Jobs in the scan queue by state, read at scrape time.',
      labelNames: ['state'],
      registers,
      async collect() {
        if (!queueCounts) return;
        try {
          const counts = await withDeadline(queueCounts, queueCountsTimeoutMs);
          for (const state of QUEUE_STATES) {
            const n = counts[state];
            if (typeof n === 'number' && Number.isFinite(n)) this.set({ state }, n);
          }
        } catch {
          // Redis down or slow: keep the last known values so the rest of the scrape still answers.
        }
      },
    }),
    dlqSize: new Gauge({
      name: 'wcagai_dlq_size',
      help: 'Scans held in the dead-letter queue.',
      registers,
      async collect() {
        if (!options.dlqSize) return;
        try {
          this.set(await withDeadline(options.dlqSize, queueCountsTimeoutMs));
        } catch {
          // keep the last known value
        }
      },
    }),
    dlqCaptured: new Counter({ name: 'wcagai_dlq_captured_total', help: 'Scans moved to the dead-letter queue, by error code.', labelNames: ['code'], registers }),
    circuitBreakerState: new Gauge({
      name: 'wcagai_circuit_breaker_state',
      help: 'Circuit breaker state per service: 0 closed, 1 half-open, 2 open, 3 isolated.',
      labelNames: ['service'],
      registers,
      collect() {
        for (const [service, state] of Object.entries(options.breakerStates?.() ?? {})) this.set({ service }, state);
      },
    }),
    // A worker process serves no /metrics: its breakers (the AI and CRM calls of its scans) reach
    // Prometheus through every API process, which reads them from the workers' heartbeats.
    workerBreakerState: new Gauge({
      name: 'wcagai_worker_circuit_breaker_state',
      help: 'Circuit breaker state per service in each process running scans, from its heartbeat: 0 closed, 1 half-open, 2 open, 3 isolated. Every API process reports every such process but itself (a serve process exports its own in wcagai_circuit_breaker_state); combine with max.',
      labelNames: ['service', 'process'],
      registers,
      async collect() {
        if (!options.workerBreakers) return;
        try {
          const states = await withDeadline(options.workerBreakers, queueCountsTimeoutMs);
          // A worker that stopped beating is gone from the fleet: its series go with it.
          this.reset();
          for (const { process, service, state } of states) this.set({ service, process }, state);
        } catch {
          // keep the last known values
        }
      },
    }),
    alertsFiring: new Gauge({
      name: 'wcagai_alerts_firing',
      help: 'Alerts currently firing, by severity.',
      labelNames: ['severity'],
      registers,
      collect() {
        if (!options.alertsFiring) return;
        this.reset();
        for (const [severity, n] of Object.entries(options.alertsFiring())) this.set({ severity }, n);
      },
    }),
  };
  // prefix '' keeps the standard names (process_resident_memory_bytes, nodejs_*) that dashboards expect.
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: '' });
  return metrics;
}

/** Counts one scan and, when timings are known, observes each phase in seconds. */
export function observeScan(metrics: Metrics, timings: ScanTimings | undefined, outcome: ScanOutcome): void {
  metrics.scans.inc({ outcome });
  if (!timings) return;
  const phases: Array<[string, number]> = [
    ['navigation', timings.navigationMs],
    ['settle', timings.settleMs],
    ['axe', timings.axeMs],
    ['total', timings.totalMs],
  ];
  for (const [phase, ms] of phases) {
    if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) metrics.scanDuration.observe({ phase }, ms / 1000);
  }
}
