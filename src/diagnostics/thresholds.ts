import { aggregationName, holds, type Aggregation, type AggregationKind, type ThresholdExpression } from './expression.js';

/**
 * trend: a distribution (p(N), avg, min, max, med, count); rate: a fraction 0..1 of requests
 * (rate, count); counter: a total (count, and rate per second); gauge: one figure (value).
 */
export type MetricKind = 'trend' | 'rate' | 'counter' | 'gauge';

export interface MetricInfo {
  kind: MetricKind;
  unit: string;
  description: string;
}

/** Every metric a stress scenario may put a threshold on. */
export const STRESS_METRICS: Readonly<Record<string, MetricInfo>> = Object.freeze({
  http_req_duration: { kind: 'trend', unit: 'ms', description: 'latency of every request (Prefer: wait requests included)' },
  scan_duration: { kind: 'trend', unit: 'ms', description: 'end-to-end scan time, submission to result' },
  http_req_failed: { kind: 'rate', unit: '', description: 'requests that failed: non-2xx other than admission 503s, socket errors, timeouts' },
  http_req_rejected: { kind: 'rate', unit: '', description: 'admission rejections: 503 with Retry-After' },
  http_req_timeouts: { kind: 'rate', unit: '', description: 'requests the client gave up on' },
  http_reqs: { kind: 'counter', unit: 'req', description: 'requests answered or failed (rate: per second)' },
  scans_completed: { kind: 'counter', unit: 'scans', description: 'scans whose result the load saw' },
  scan_failed: { kind: 'rate', unit: '', description: 'finished scans whose status is failed' },
  queue_depth: { kind: 'trend', unit: 'jobs', description: 'waiting + active scans, sampled every second' },
  server_rss_mb: { kind: 'trend', unit: 'MB', description: 'RSS of the API process, sampled every second' },
  server_heap_mb: { kind: 'trend', unit: 'MB', description: 'heap used by the API process, sampled every second' },
  chromium_rss_mb: { kind: 'trend', unit: 'MB', description: 'Chromium process tree of the self-contained stack, sampled every second' },
  dlq_growth: { kind: 'gauge', unit: 'entries', description: 'dead-letter entries added during the run' },
  recovery_drained_ms: { kind: 'gauge', unit: 'ms', description: 'time from the end of the load until the queue was empty' },
  recovery_healthy_ms: { kind: 'gauge', unit: 'ms', description: 'time from the end of the load until /health/detailed said healthy' },
});

const ALLOWED: Record<MetricKind, readonly AggregationKind[]> = {
  trend: ['p', 'avg', 'min', 'max', 'med', 'count'],
  rate: ['rate', 'count'],
  counter: ['count', 'rate'],
  gauge: ['value', 'min', 'max'],
};

const describeAllowed = (kind: MetricKind) => ALLOWED[kind].map((a) => (a === 'p' ? 'p(N)' : a)).join(', ');

/** Why `metric` cannot carry `expression`, or null when it can. */
export function thresholdProblem(metric: string, expression: ThresholdExpression): string | null {
  const info = STRESS_METRICS[metric];
  if (!info) return `unknown metric "${metric}" (known: ${Object.keys(STRESS_METRICS).join(', ')})`;
  if (!ALLOWED[info.kind].includes(expression.aggregation.kind)) {
    return `${aggregationName(expression.aggregation)} does not apply to ${metric} (a ${info.kind}: ${describeAllowed(info.kind)})`;
  }
  return null;
}

/** Where evaluated figures come from: null when the run produced none. */
export type MetricSource = (metric: string, aggregation: Aggregation) => number | null;

export interface ThresholdResult {
  metric: string;
  expression: string;
  actual: number | null;
  passed: boolean;
}

/** Evaluates every threshold, in the scenario's order. */
export function evaluateThresholds(thresholds: Readonly<Record<string, readonly ThresholdExpression[]>>, source: MetricSource): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  for (const [metric, expressions] of Object.entries(thresholds)) {
    for (const expression of expressions) {
      const raw = source(metric, expression.aggregation);
      const value = raw === null || Number.isNaN(raw) ? null : raw;
      // Judged on the exact figure; shown rounded.
      out.push({ metric, expression: expression.source, actual: value === null ? null : Math.round(value * 10_000) / 10_000, passed: holds(expression, value) });
    }
  }
  return out;
}
