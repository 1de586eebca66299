import type { LatencySummary } from './histogram.js';
import type { RequestKind } from './scenario.js';
import type { SampleSummary } from './stats.js';
import type { ErrorSample } from './stress-collector.js';
import type { ThresholdResult } from './thresholds.js';

export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** What `wcagai stress --json` prints: times in ms, rates 0..1, memory in MB. */
export interface StressResult {
  scenario: string;
  file: string;
  /** `self` or the deployment's base URL. */
  target: string;
  startedAt: string;
  /** Length of the load phase. */
  durationMs: number;
  connections: number;
  /** Requests answered or failed. */
  requests: number;
  /** Requests per second over the load phase. */
  throughput: number;
  latency: Percentiles & { min: number | null; avg: number | null; count: number };
  scanDuration: Percentiles & { min: number | null; avg: number | null; count: number };
  /** Per request kind: sent, answered (requests), latency of the answers. */
  byKind: Record<RequestKind, { sent: number; requests: number; latency: LatencySummary }>;
  /** Requests still open when the load stopped (cut off: neither answered nor failed). */
  inFlightAtEnd: number;
  statusCodes: Record<string, number>;
  scans: { completed: number; failed: number; waitExpired: number; cached: number; deduplicated: number; failureCodes: Record<string, number> };
  /** Failed requests (non-2xx except admission 503s, socket errors, timeouts) over all requests. */
  errorRate: number;
  errors: { http: number; socket: number; timeouts: number; samples: ErrorSample[] };
  /** 503 answers with Retry-After: admission control doing its job. */
  rejected: number;
  rejectedRate: number;
  timeouts: number;
  server: {
    samples: number;
    rssMb: SampleSummary & { end: number | null };
    heapMb: SampleSummary & { end: number | null };
    queueDepth: SampleSummary;
    chromiumRssMb: SampleSummary | null;
    eventLoopP99MsMax: number | null;
    /** Health states seen during the load, with how many samples each. */
    statuses: Record<string, number>;
  };
  breakers: Record<string, string> | null;
  dlq: { start: number; end: number; growth: number } | null;
  recovery: { drainedMs: number | null; healthyMs: number | null; deadlineMs: number };
  thresholds: ThresholdResult[];
  passed: boolean;
  /** The signal that stopped the run early (`SIGINT`, `SIGTERM`), or null. A cut run is no verdict: `passed` is false. */
  interrupted: string | null;
  /** The self-contained stack, when there was one (set by the caller). */
  stack?: Record<string, unknown>;
}

const ms = (v: number | null) => (v === null ? '-' : v >= 10_000 ? `${(v / 1_000).toFixed(1)} s` : `${Math.round(v)} ms`);
const pct = (v: number) => `${(v * 100).toFixed(v > 0 && v < 0.001 ? 3 : 1)}%`;
const mb = (v: number | null) => (v === null ? '-' : `${Math.round(v)} MB`);

/** One line, rewritten in place on a terminal while the load runs. */
export function progressLine(p: { scenario: string; elapsedMs: number; plannedMs: number | null; requests: number; p95: number | null; errorRate: number; rejected: number; queueDepth: number | null; rssMb: number | null }): string {
  const time = `${Math.round(p.elapsedMs / 1_000)}s${p.plannedMs ? `/${Math.round(p.plannedMs / 1_000)}s` : ''}`;
  const rps = p.elapsedMs > 0 ? (p.requests / (p.elapsedMs / 1_000)).toFixed(1) : '0';
  return `stress ${p.scenario}  ${time}  req ${p.requests} (${rps}/s)  p95 ${ms(p.p95)}  err ${pct(p.errorRate)}  rejected ${p.rejected}  queue ${p.queueDepth ?? '-'}  rss ${mb(p.rssMb)}`;
}

function table(rows: ReadonlyArray<readonly string[]>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** The report at the end of a run, for a terminal. */
export function stressTable(r: StressResult): string {
  const out: string[] = [];
  out.push(`wcagai stress: ${r.scenario} against ${r.target}, ${r.connections} connection(s), ${(r.durationMs / 1_000).toFixed(1)} s`);
  out.push('');
  out.push(
    table([
      ['', 'count', 'p50', 'p90', 'p95', 'p99', 'max'],
      ['request latency', String(r.latency.count), ms(r.latency.p50), ms(r.latency.p90), ms(r.latency.p95), ms(r.latency.p99), ms(r.latency.max)],
      ['scan end-to-end', String(r.scanDuration.count), ms(r.scanDuration.p50), ms(r.scanDuration.p90), ms(r.scanDuration.p95), ms(r.scanDuration.p99), ms(r.scanDuration.max)],
      ...(Object.entries(r.byKind) as Array<[string, StressResult['byKind'][RequestKind]]>)
        .filter(([, k]) => k.requests > 0)
        .map(([kind, k]) => [`  ${kind}`, String(k.requests), ms(k.latency.p50), ms(k.latency.p90), ms(k.latency.p95), ms(k.latency.p99), ms(k.latency.max)]),
    ]),
  );
  out.push('');
  const codes = Object.entries(r.statusCodes).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none';
  out.push(
    table([
      ['requests', `${r.requests} (${r.throughput.toFixed(1)}/s); status codes ${codes}${r.inFlightAtEnd ? `; ${r.inFlightAtEnd} still open when the load stopped` : ''}`],
      ['scans', `${r.scans.completed} completed, ${r.scans.failed} failed${r.scans.waitExpired ? `, ${r.scans.waitExpired} outlived Prefer: wait` : ''}${Object.keys(r.scans.failureCodes).length ? ` (${Object.entries(r.scans.failureCodes).map(([c, n]) => `${c} ${n}`).join(', ')})` : ''}`],
      ['error rate', `${pct(r.errorRate)} (${r.errors.http} HTTP, ${r.errors.socket} socket, ${r.errors.timeouts} timeouts)`],
      ['rejected', `${r.rejected} (${pct(r.rejectedRate)}) answered 503 with Retry-After`],
      ['server', `rss max ${mb(r.server.rssMb.max)} (end ${mb(r.server.rssMb.end)}), heap max ${mb(r.server.heapMb.max)}, queue depth max ${r.server.queueDepth.max ?? '-'} avg ${r.server.queueDepth.avg === null ? '-' : r.server.queueDepth.avg.toFixed(1)}${r.server.chromiumRssMb ? `, chromium max ${mb(r.server.chromiumRssMb.max)}` : ''}`],
      ['breakers', r.breakers ? Object.entries(r.breakers).map(([n, s]) => `${n} ${s}`).join(', ') || 'none' : 'not reported'],
      ['dlq', r.dlq ? `${r.dlq.end} entries (+${r.dlq.growth})` : 'not reported'],
      ['recovery', `queue empty after ${ms(r.recovery.drainedMs)}, healthy after ${ms(r.recovery.healthyMs)} (deadline ${ms(r.recovery.deadlineMs)})`],
    ]),
  );
  if (r.thresholds.length) {
    out.push('');
    out.push(table([['threshold', 'actual', ''], ...r.thresholds.map((t) => [`${t.metric} ${t.expression}`, t.actual === null ? 'no data' : String(t.actual), t.passed ? 'ok' : 'FAILED'])]));
  }
  out.push('');
  const failed = r.thresholds.filter((t) => !t.passed).length;
  if (r.interrupted) out.push(`INTERRUPTED by ${r.interrupted} after ${(r.durationMs / 1_000).toFixed(1)} s: no verdict (${failed} threshold(s) failed over the part that ran)`);
  else out.push(r.passed ? 'PASSED: every threshold holds' : `FAILED: ${failed} threshold(s) failed`);
  return `${out.join('\n')}\n`;
}
