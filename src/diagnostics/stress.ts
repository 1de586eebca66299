import { randomBytes } from 'node:crypto';
import { maskUrl } from '../config/secrets.js';
import { WcagaiError } from '../errors/catalogue.js';
import { networkMessage } from '../tui/client.js';
import type { Aggregation } from './expression.js';
import type { LatencyHistogram } from './histogram.js';
import type { Scenario } from './scenario.js';
import { quantileSorted, summarize, type SampleSummary } from './stats.js';
import { StressCollector } from './stress-collector.js';
import { runLoad } from './stress-load.js';
import { awaitRecovery, healthProbe, HealthMonitor, type HealthSample } from './stress-monitor.js';
import { progressLine, type StressResult } from './stress-report.js';
import { evaluateThresholds, type MetricSource } from './thresholds.js';

/** What the load is pointed at. */
export interface StressTarget {
  /** `self` or the deployment's base URL, for the report. */
  label: string;
  baseUrl: string;
  /** API key or bearer token of the deployment. */
  token?: string;
  /** Origin of the fixture site that relative scenario pages resolve against, if one runs. */
  siteOrigin: string | null;
  /** RSS of the Chromium tree in bytes, when the stack runs here. */
  chromiumRss?: () => number | null;
}

/** A terminal to draw the progress line on (stderr), or nothing. */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface StressRunOptions {
  scenario: Scenario;
  target: StressTarget;
  progress?: ProgressStream | null;
  /** Stops the load and the recovery wait; its reason (a string such as `SIGINT`) is reported as `interrupted`. */
  signal?: AbortSignal;
}

const MB = 2 ** 20;

/**
 * GET /health within 5 s, or a tool error naming the target. When the load calls the scan API,
 * also one GET of a scan that does not exist: a deployment that refuses the key (401, 403; none
 * given, or a wrong one) is a tool error, not a run whose every request failed.
 */
async function preflight(target: StressTarget, headers: Record<string, string>, usesApi: boolean): Promise<void> {
  try {
    const res = await fetch(new URL('/health', target.baseUrl), { headers, signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    if (res.status >= 500 && res.status !== 503) throw new Error(`GET /health answered ${res.status}`);
  } catch (err) {
    // The socket error's code, or why fetch refused before connecting (a port it never uses).
    throw new WcagaiError('CONNECTION_FAILED', `target ${maskUrl(target.baseUrl, '***')} is unreachable: ${networkMessage(err, target.baseUrl)}`);
  }
  if (!usesApi) return;
  let status: number;
  try {
    const res = await fetch(new URL(`/api/scans/scan_wcagai-stress-preflight-${randomBytes(4).toString('hex')}`, target.baseUrl), { headers, signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    status = res.status;
  } catch {
    return; // unanswered under load is the run's to measure
  }
  if (status === 401 || status === 403) {
    throw new WcagaiError('USAGE', `target ${target.baseUrl} answered ${status} to GET /api/scans/:id: ${target.token ? 'it refuses the key given with --token' : 'it needs an API key: give it with --token'}`);
  }
}

/** Scenario pages as absolute URLs: paths resolve against the fixture site. */
function resolvePages(scenario: Scenario, siteOrigin: string | null): Array<{ url: string; weight: number }> {
  return scenario.pages.map((p) => {
    if (!p.url.startsWith('/')) return p;
    if (!siteOrigin) throw new WcagaiError('USAGE', `${scenario.file}: page ${p.url} is a path on the fixture site, which does not run here`);
    return { url: new URL(p.url, siteOrigin).href, weight: p.weight };
  });
}

function trend(h: LatencyHistogram, a: Aggregation): number | null {
  const s = h.summary();
  switch (a.kind) {
    case 'p':
      return h.percentile(a.percentile);
    case 'avg':
      return s.avg;
    case 'min':
      return s.min;
    case 'max':
      return s.max;
    case 'med':
      return s.p50;
    case 'count':
      return s.count;
    default:
      return null;
  }
}

function sampled(values: number[], a: Aggregation): number | null {
  const sorted = [...values].sort((x, y) => x - y);
  if (a.kind === 'count') return sorted.length;
  if (sorted.length === 0) return null;
  const s = summarize(sorted);
  if (a.kind === 'p') return quantileSorted(sorted, a.percentile / 100);
  if (a.kind === 'med') return s.med;
  if (a.kind === 'avg' || a.kind === 'min' || a.kind === 'max') return s[a.kind];
  return null;
}

const finite = (xs: Array<number | null>): number[] => xs.filter((x): x is number => x !== null);

/** A sample summary with figures to one decimal, for the report. */
function rounded(values: number[]): SampleSummary {
  const s = summarize(values);
  const r = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
  return { count: s.count, min: r(s.min), max: r(s.max), avg: r(s.avg), med: r(s.med), p90: r(s.p90), p95: r(s.p95), p99: r(s.p99) };
}

/**
 * One stress run: load from autocannon per the scenario's stages, /health/detailed sampled every
 * second, then recovery (queue empty, status healthy) within the scenario's deadline, thresholds last.
 */
export async function runStress(options: StressRunOptions): Promise<StressResult> {
  const { scenario, target } = options;
  const headers: Record<string, string> = target.token ? { authorization: `Bearer ${target.token}` } : {};
  const pages = resolvePages(scenario, target.siteOrigin);
  await preflight(target, headers, scenario.stages.some((st) => st.mix.scan + st.mix.enqueue + st.mix.status > 0));

  const collector = new StressCollector();
  const extra = target.chromiumRss
    ? () => {
        const bytes = target.chromiumRss!();
        return { chromiumRssMb: bytes === null ? null : Math.round(bytes / MB) };
      }
    : undefined;
  const probe = healthProbe({ baseUrl: target.baseUrl, headers, ...(extra ? { extra } : {}) });
  const before = await probe(0);
  const monitor = new HealthMonitor(probe);
  const startedAt = new Date().toISOString();
  const plannedMs = scenario.stages.every((s) => s.durationMs !== null) ? Math.max(...scenario.stages.map((s) => s.startMs + (s.durationMs ?? 0))) : null;
  const started = performance.now();
  const tty = options.progress?.isTTY === true ? options.progress : null;
  const draw = () => {
    const last = monitor.latest();
    tty?.write(
      `\r\x1b[2K${progressLine({ scenario: scenario.name, elapsedMs: performance.now() - started, plannedMs, requests: collector.attempts, p95: collector.latency.percentile(95), errorRate: collector.errorRate, rejected: collector.rejected, queueDepth: last?.queueDepth ?? null, rssMb: last?.rssMb ?? null })}`,
    );
  };
  const ticker = tty ? setInterval(draw, 1_000) : null;
  let loadEndedAt = started;

  monitor.start();
  let load: { durationMs: number };
  try {
    load = await runLoad(
      {
        stages: scenario.stages,
        pages,
        waitSeconds: scenario.waitSeconds,
        timeoutMs: scenario.timeoutMs,
        maxDurationMs: scenario.maxDurationMs,
        cacheBust: scenario.cacheBust,
        scanOptions: scenario.scanOptions,
        runId: randomBytes(4).toString('hex'),
      },
      { baseUrl: target.baseUrl, headers },
      collector,
      options.signal,
    );
  } finally {
    loadEndedAt = performance.now();
    await monitor.stop();
    if (ticker) clearInterval(ticker);
    if (tty) {
      draw();
      tty.write('\n');
    }
  }
  const recovery = await awaitRecovery(probe, scenario.recovery.deadlineMs, { loadEndedAt, detailed: before.detailed || monitor.samples.some((s) => s.detailed), ...(options.signal ? { signal: options.signal } : {}) });
  // Read once the load and the recovery wait are over: a signal after them interrupted nothing.
  const interrupted = options.signal?.aborted ? (typeof options.signal.reason === 'string' ? options.signal.reason : 'aborted') : null;
  const after: HealthSample | null = recovery.last;

  const samples = monitor.samples;
  const rss = finite(samples.map((s) => s.rssMb));
  const heap = finite(samples.map((s) => s.heapMb));
  const depth = finite(samples.map((s) => s.queueDepth));
  const chromium = finite(samples.map((s) => s.chromiumRssMb));
  const statuses: Record<string, number> = {};
  for (const s of samples) statuses[s.status] = (statuses[s.status] ?? 0) + 1;
  const dlq = before.dlqSize !== null && after?.dlqSize !== null && after?.dlqSize !== undefined ? { start: before.dlqSize, end: after.dlqSize, growth: after.dlqSize - before.dlqSize } : null;
  const seconds = load.durationMs / 1_000;
  const c = collector;
  const finished = c.scansCompleted + c.scansFailed;

  const source: MetricSource = (metric, a) => {
    // A rate over nothing is no figure (null fails its threshold): a run whose every request hung
    // has no failed requests, and must not pass `rate<0.1` on that.
    const rate = (num: number, den: number) => (a.kind === 'count' ? num : den === 0 ? null : num / den);
    switch (metric) {
      case 'http_req_duration':
        return trend(c.latency, a);
      case 'scan_duration':
        return trend(c.scanDuration, a);
      case 'http_req_failed':
        return rate(c.failures, c.attempts);
      case 'http_req_rejected':
        return rate(c.rejected, c.attempts);
      case 'http_req_timeouts':
        return rate(c.timeouts, c.attempts);
      case 'http_reqs':
        return a.kind === 'count' ? c.attempts : seconds > 0 ? c.attempts / seconds : null;
      case 'scans_completed':
        return a.kind === 'count' ? c.scansCompleted : seconds > 0 ? c.scansCompleted / seconds : null;
      case 'scan_failed':
        return rate(c.scansFailed, finished);
      case 'queue_depth':
        return sampled(depth, a);
      case 'server_rss_mb':
        return sampled(rss, a);
      case 'server_heap_mb':
        return sampled(heap, a);
      case 'chromium_rss_mb':
        return sampled(chromium, a);
      case 'dlq_growth':
        return dlq?.growth ?? null;
      case 'recovery_drained_ms':
        return recovery.drainedMs;
      case 'recovery_healthy_ms':
        return recovery.healthyMs;
      default:
        return null;
    }
  };
  const thresholds = evaluateThresholds(scenario.thresholds, source);
  const lat = c.latency.summary();
  const scan = c.scanDuration.summary();
  const round = (x: number) => Math.round(x * 10_000) / 10_000;

  return {
    scenario: scenario.name,
    file: scenario.file,
    target: target.label,
    startedAt,
    durationMs: load.durationMs,
    connections: scenario.connections,
    requests: c.attempts,
    throughput: seconds > 0 ? Math.round((c.attempts / seconds) * 100) / 100 : 0,
    latency: { p50: lat.p50, p90: lat.p90, p95: lat.p95, p99: lat.p99, max: lat.max, min: lat.min, avg: lat.avg, count: lat.count },
    scanDuration: { p50: scan.p50, p90: scan.p90, p95: scan.p95, p99: scan.p99, max: scan.max, min: scan.min, avg: scan.avg, count: scan.count },
    byKind: Object.fromEntries(Object.entries(c.byKind).map(([k, v]) => [k, { sent: v.sent, requests: v.requests, latency: v.latency.summary() }])) as StressResult['byKind'],
    inFlightAtEnd: Math.max(0, c.sent - c.attempts),
    statusCodes: { ...c.statusCodes },
    scans: { completed: c.scansCompleted, failed: c.scansFailed, waitExpired: c.waitExpired, cached: c.cachedAnswers, deduplicated: c.deduplicated, failureCodes: { ...c.failureCodes } },
    errorRate: round(c.errorRate),
    errors: { http: c.httpFailures, socket: c.socketErrors, timeouts: c.timeouts, samples: c.errorSamples },
    rejected: c.rejected,
    rejectedRate: round(c.rejectedRate),
    timeouts: c.timeouts,
    server: {
      samples: samples.length,
      rssMb: { ...rounded(rss), end: rss[rss.length - 1] ?? null },
      heapMb: { ...rounded(heap), end: heap[heap.length - 1] ?? null },
      queueDepth: rounded(depth),
      chromiumRssMb: chromium.length ? rounded(chromium) : null,
      eventLoopP99MsMax: finite(samples.map((s) => s.eventLoopP99Ms)).reduce<number | null>((m, v) => (m === null || v > m ? v : m), null),
      statuses,
    },
    breakers: after?.breakers ?? null,
    dlq,
    recovery: { drainedMs: recovery.drainedMs, healthyMs: recovery.healthyMs, deadlineMs: recovery.deadlineMs },
    thresholds,
    // A run cut short proves nothing, whatever its thresholds say over the part that ran.
    passed: interrupted === null && thresholds.every((t) => t.passed),
    interrupted,
  };
}
