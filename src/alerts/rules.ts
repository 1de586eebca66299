import type { AlertRuleName } from '../config/schema.js';
import type { Alert, AlertSettings, Figures } from './types.js';

/** A rule's verdict: an alert, null when clear, 'unknown' when its figures are missing. */
export type Verdict = Alert | null | 'unknown';

const MB = 2 ** 20;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

type Check = (figures: Figures, threshold: number, settings: AlertSettings) => { value: number; summary: string; details?: Record<string, unknown> } | null | 'unknown';

/** Each rule: figures in, a firing description or null out. Thresholds are inclusive. */
const CHECKS: Record<AlertRuleName, Check> = {
  ERROR_RATE: ({ scans }, threshold, s) => {
    if (!scans) return 'unknown';
    const total = scans.completed + scans.failed;
    if (total < s.errorRateMinScans) return null;
    const rate = (scans.failed / total) * 100;
    const minutes = round(scans.windowMs / 60_000);
    return rate >= threshold ? { value: round(rate), summary: `scan error rate ${round(rate)}% over the last ${minutes} min (${scans.failed} of ${total} failed; threshold ${threshold}%)`, details: { ...scans } } : null;
  },
  QUEUE_DEPTH: ({ queue }, threshold) => {
    if (!queue) return 'unknown';
    return queue.waiting >= threshold ? { value: queue.waiting, summary: `${queue.waiting} scans waiting in the queue (threshold ${threshold})`, details: { ...queue } } : null;
  },
  QUEUE_UTILIZATION: ({ queue }, threshold) => {
    if (!queue) return 'unknown';
    const u = queue.utilizationPercent;
    return u >= threshold ? { value: u, summary: `queue at ${u}% of its capacity of ${queue.maxCapacity} (threshold ${threshold}%)`, details: { ...queue } } : null;
  },
  BREAKER_OPEN: ({ breakers }, threshold) => {
    if (!breakers) return 'unknown';
    // HALF_OPEN with its trial call in flight is still open: the trial can take the whole <SVC>_TIMEOUT,
    // and a failed trial opens it again. Counting only OPEN resolved the alert for the trial and
    // triggered it again after. A HALF_OPEN breaker with no trial in flight (its open period is over
    // and no call came since) is not: health counts it healthy, and an idle one would fire forever.
    const open = breakers.filter((b) => b.state === 'OPEN' || (b.state === 'HALF_OPEN' && b.trialInFlight !== false));
    const names = [...new Set(open.map((b) => b.name))].sort();
    return names.length >= threshold && names.length > 0
      ? { value: names.length, summary: `circuit breaker open: ${names.join(', ')}`, details: { open: open.map((b) => `${b.name}@${b.process}`) } }
      : null;
  },
  DLQ_GROWTH: ({ dlq }, threshold) => {
    if (!dlq) return 'unknown';
    return dlq.lastHourAdded >= threshold ? { value: dlq.lastHourAdded, summary: `${dlq.lastHourAdded} scans entered the dead-letter queue in the last hour (${dlq.size} held; threshold ${threshold})`, details: { ...dlq } } : null;
  },
  RSS: ({ processes }, threshold) => {
    if (!processes?.length) return 'unknown';
    const over = processes.filter((p) => p.rssBytes / MB >= threshold).sort((a, b) => b.rssBytes - a.rssBytes);
    const top = over[0];
    return top
      ? { value: Math.round(top.rssBytes / MB), summary: `resident memory ${Math.round(top.rssBytes / MB)} MB in ${top.id}${over.length > 1 ? ` and ${over.length - 1} more` : ''} (threshold ${threshold} MB)`, details: { processes: over.map((p) => ({ id: p.id, rssMb: Math.round(p.rssBytes / MB) })) } }
      : null;
  },
  WORKERS_MISSING: ({ workers }, threshold) => {
    if (workers === undefined) return 'unknown';
    return workers < threshold ? { value: workers, summary: `${workers} worker(s) sending heartbeats, expected at least ${threshold}: queued scans are not being processed`, details: { workers } } : null;
  },
};

/** Evaluates every rule on `figures`: pure, no clock, no I/O. */
export function evaluateRules(figures: Figures, settings: AlertSettings): Map<AlertRuleName, Verdict> {
  const out = new Map<AlertRuleName, Verdict>();
  for (const [rule, check] of Object.entries(CHECKS) as Array<[AlertRuleName, Check]>) {
    const rs = settings.rules[rule];
    if (!rs.enabled) {
      out.set(rule, null);
      continue;
    }
    const result = check(figures, rs.threshold, settings);
    if (result === null || result === 'unknown') {
      out.set(rule, result);
      continue;
    }
    out.set(rule, { id: rule.toLowerCase(), rule, severity: rs.severity, summary: result.summary, value: result.value, threshold: rs.threshold, details: result.details ?? {} });
  }
  return out;
}
