import { maskUrl } from '../config/secrets.js';
import { ANSWERED_LOAD_TIMEOUT, WcagaiError } from '../errors/catalogue.js';
import { refusedPortMessage } from '../tui/client.js';
import { linearRegression } from './stats.js';

/** The scan engine as the leak run sees it. */
export interface LeakScanner {
  scan(url: string): Promise<{ status: 'ok' | 'error'; error?: { code: string; message?: string } }>;
  /** The browser's pid, for the RSS of its process tree. */
  browserPid(): number | null;
}

/** Measurements of this process (injected: only the app layer touches process and v8). */
export interface LeakProbes {
  /** A full, forced garbage collection. */
  gc(): Promise<void> | void;
  memory(): { heapUsed: number; external: number; rss: number };
  /** Active handles and requests (sockets, timers, child processes). */
  handles(): number;
  /** RSS (PSS where available) of a process tree in bytes. */
  treeRss(pid: number): number;
  /** Writes a heap snapshot and returns its path. */
  snapshot?(label: 'first' | 'last'): string;
}

export interface LeakOptions {
  concurrent: number;
  /** Browser pages the scans share (reported; the engine enforces it). */
  pages?: number;
  cycles: number;
  urls: readonly string[];
  /** Post-GC heap growth that fails the run whatever the trend. */
  maxGrowthBytes: number;
  /** A significant upward trend fails only when it projects past this over the run. */
  toleranceBytes: number;
  maxErrorRate?: number;
  /** Cycles before the baseline sample (JIT, caches, pools warming up). */
  warmupCycles?: number;
  /** Sample every N cycles after warm-up (default: about 100 samples over the run). */
  sampleEvery?: number;
  /** Test hook: receives every scan result (a retaining hook simulates a leak). */
  retain?: (result: unknown) => void;
  onProgress?: (p: { cycle: number; cycles: number; scans: number; errors: number; last: LeakSample | null }) => void;
  signal?: AbortSignal;
}

export interface LeakSample {
  cycle: number;
  heapUsed: number;
  external: number;
  rss: number;
  chromiumRss: number | null;
  handles: number;
}

interface Range {
  startBytes: number;
  endBytes: number;
  maxBytes: number;
}

export interface LeakResult {
  verdict: 'pass' | 'leak';
  /** Why the verdict is leak (empty on pass). */
  reasons: string[];
  /** Cycles run (fewer than planned when stopped by a deadline or a signal). */
  cycles: number;
  plannedCycles: number;
  concurrent: number;
  /** Browser pages open at once (scans beyond them waited for one). */
  pages: number;
  warmupCycles: number;
  scans: number;
  errors: number;
  errorRate: number;
  errorCodes: Record<string, number>;
  durationMs: number;
  heap: { startBytes: number; endBytes: number; growthBytes: number; slopeBytesPerCycle: number; slopeCi: [number | null, number | null]; r2: number; projectedGrowthBytes: number; samples: number };
  external: Range;
  rss: Range;
  chromiumRss: (Range & { browserRestarts?: number }) | null;
  handles: { start: number; end: number; max: number };
  criteria: { maxGrowthBytes: number; toleranceBytes: number; maxErrorRate: number; confidence: number };
  samples: LeakSample[];
  snapshots: string[];
  /** Why the run has no verdict (stopped before enough samples: `verdict` then rests on no slope), or null. */
  inconclusive: string | null;
}

const MB = 2 ** 20;
/** MB from 1 MB up, KB below: a 1KB --max-growth or a slope of a few KB per cycle does not read as 0.0 MB. */
const fmt = (bytes: number) => (Math.abs(bytes) >= MB ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`);

function range(values: number[]): Range {
  return { startBytes: values[0] ?? 0, endBytes: values[values.length - 1] ?? 0, maxBytes: values.length ? Math.max(...values) : 0 };
}

/** Default warm-up: a tenth of the run, 1-50 cycles (none for runs of 3 cycles or fewer). */
export function defaultWarmup(cycles: number): number {
  return cycles <= 3 ? 0 : Math.min(50, Math.max(1, Math.round(cycles / 10)));
}

/** A run stopped early with fewer post-GC samples than this has no slope to judge. */
export const MIN_VERDICT_SAMPLES = 3;

/**
 * Why a run's verdict means nothing, or null: stopped (deadline or signal) before three samples
 * after warm-up, its "pass" would rest on no slope at all.
 */
export function inconclusive(r: Pick<LeakResult, 'cycles' | 'plannedCycles' | 'heap'>): string | null {
  if (r.cycles >= r.plannedCycles || r.heap.samples >= MIN_VERDICT_SAMPLES) return null;
  return `stopped after ${r.cycles} of ${r.plannedCycles} cycles with ${r.heap.samples} sample(s) after warm-up; ${MIN_VERDICT_SAMPLES} are needed for a verdict`;
}

/**
 * Failures of a scan that reached no document of the target: no connection (refused, reset, a
 * port the browser refuses), no address, no valid certificate, or a target the scan policy refuses;
 * or a navigation that did not finish within its deadline (a host that takes the connection, or
 * drops the packets, and never answers). Not SCAN_TIMEOUT: the page loaded, a later step was slow.
 */
const UNREACHED = new Set(['CONNECTION_FAILED', 'DNS_FAILURE', 'TLS_CERT_INVALID', 'BLOCKED_TARGET', 'NAVIGATION_TIMEOUT']);

/**
 * One scan of each distinct URL before the run. A URL whose scan reached nothing of its target (no
 * answer at all within the navigation deadline included) is a tool error naming it: every scan of
 * the run would fail alike, and the error rate would judge the target, not the engine's memory. A
 * target that answers, even with an error status, a load that never finishes or a scan too slow
 * for its deadline, is the run's to measure. These
 * scans count toward nothing.
 */
export async function checkTargets(scanner: LeakScanner, urls: readonly string[]): Promise<void> {
  const distinct = [...new Set(urls)];
  const results = await Promise.all(distinct.map(async (url) => ({ url, result: await scanner.scan(url) })));
  // A navigation that timed out after its document answered (an image that never arrives) reached the target.
  const unreached = results.filter(({ result }) => result.status === 'error' && UNREACHED.has(result.error?.code ?? '') && !result.error?.message?.startsWith(ANSWERED_LOAD_TIMEOUT));
  const first = unreached[0];
  if (!first) return;
  const { code, message = '' } = first.result.error!;
  // The engine's message ends with the URL again (`net::ERR_CONNECTION_REFUSED at http://…`).
  const reason = /ERR_UNSAFE_PORT/.test(message) ? refusedPortMessage(first.url, 'browsers') : `${message.replace(/ at \S+$/, '') || 'no answer'} (${code})`;
  const others = unreached.length > 1 ? `; ${unreached.length - 1} more of the ${distinct.length} URLs cannot be reached either` : '';
  throw new WcagaiError('CONNECTION_FAILED', `cannot reach ${maskUrl(first.url, '***')}: ${maskUrl(reason, '***')}${others}; nothing was measured`);
}

/**
 * Runs `cycles` rounds of `concurrent` scans and samples memory after a forced GC every few
 * rounds. Leak when the slope's 95 % interval lies above zero and the trend projects past the
 * tolerance over the run, when growth exceeds the maximum, or when too many scans fail.
 */
export async function runLeak(scanner: LeakScanner, probes: LeakProbes, options: LeakOptions): Promise<LeakResult> {
  const { concurrent, cycles, urls } = options;
  if (urls.length === 0) throw new RangeError('no URL to scan');
  const warmup = Math.min(options.warmupCycles ?? defaultWarmup(cycles), cycles - 1);
  const every = options.sampleEvery ?? Math.max(1, Math.floor((cycles - warmup) / 100));
  const maxErrorRate = options.maxErrorRate ?? 0.1;
  const samples: LeakSample[] = [];
  const snapshots: string[] = [];
  const errorCodes: Record<string, number> = {};
  let scans = 0;
  let errors = 0;
  let ran = 0;

  const sample = async (cycle: number) => {
    // Twice: the first pass can leave objects that only the second frees (weak maps, finalizers).
    await probes.gc();
    await new Promise((r) => setImmediate(r));
    await probes.gc();
    const m = probes.memory();
    const pid = scanner.browserPid();
    const s: LeakSample = { cycle, heapUsed: m.heapUsed, external: m.external, rss: m.rss, chromiumRss: pid === null ? null : probes.treeRss(pid), handles: probes.handles() };
    samples.push(s);
    return s;
  };

  const started = performance.now();
  if (warmup === 0) await sample(0);
  if (warmup === 0 && probes.snapshot) snapshots.push(probes.snapshot('first'));
  for (let cycle = 1; cycle <= cycles; cycle++) {
    if (options.signal?.aborted) break;
    await Promise.all(
      Array.from({ length: concurrent }, async (_, lane) => {
        const result = await scanner.scan(urls[((cycle - 1) * concurrent + lane) % urls.length]!);
        scans++;
        if (result.status === 'error') {
          errors++;
          const code = result.error?.code ?? 'UNKNOWN';
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        }
        options.retain?.(result);
      }),
    );
    ran = cycle;
    if (cycle === warmup) {
      await sample(cycle);
      if (probes.snapshot) snapshots.push(probes.snapshot('first'));
    } else if (cycle > warmup && ((cycle - warmup) % every === 0 || cycle === cycles)) await sample(cycle);
    options.onProgress?.({ cycle, cycles, scans, errors, last: samples[samples.length - 1] ?? null });
  }
  if (samples[samples.length - 1]?.cycle !== ran) await sample(ran);
  if (probes.snapshot) snapshots.push(probes.snapshot('last'));

  const heap = samples.map((s) => s.heapUsed);
  const fit = linearRegression(
    samples.map((s) => s.cycle),
    heap,
  );
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const growth = last.heapUsed - first.heapUsed;
  const projected = fit.slope * (last.cycle - first.cycle);
  const errorRate = scans === 0 ? 0 : errors / scans;
  const reasons: string[] = [];
  if (fit.slopeCi[0] > 0 && projected > options.toleranceBytes) {
    reasons.push(`heap grows ${fmt(fit.slope)}/cycle (95% CI ${fmt(fit.slopeCi[0])} to ${fmt(fit.slopeCi[1])}), ${fmt(projected)} over the run, above the ${fmt(options.toleranceBytes)} tolerance`);
  }
  if (growth > options.maxGrowthBytes) reasons.push(`post-GC heap grew ${fmt(growth)}, above the ${fmt(options.maxGrowthBytes)} maximum`);
  if (errorRate > maxErrorRate) reasons.push(`${(errorRate * 100).toFixed(1)}% of scans failed, above ${(maxErrorRate * 100).toFixed(0)}%`);
  const chromium = samples.map((s) => s.chromiumRss).filter((v): v is number => v !== null);
  const finiteOrNull = (v: number) => (Number.isFinite(v) ? Math.round(v) : null);

  const result: LeakResult = {
    verdict: reasons.length ? 'leak' : 'pass',
    reasons,
    cycles: ran,
    plannedCycles: cycles,
    concurrent,
    pages: options.pages ?? concurrent,
    warmupCycles: warmup,
    scans,
    errors,
    errorRate: Math.round(errorRate * 10_000) / 10_000,
    errorCodes,
    durationMs: Math.round(performance.now() - started),
    heap: {
      startBytes: first.heapUsed,
      endBytes: last.heapUsed,
      growthBytes: growth,
      slopeBytesPerCycle: Math.round(fit.slope),
      slopeCi: [finiteOrNull(fit.slopeCi[0]), finiteOrNull(fit.slopeCi[1])],
      r2: Math.round(fit.r2 * 10_000) / 10_000,
      projectedGrowthBytes: Math.round(projected),
      samples: samples.length,
    },
    external: range(samples.map((s) => s.external)),
    rss: range(samples.map((s) => s.rss)),
    chromiumRss: chromium.length ? range(chromium) : null,
    handles: { start: first.handles, end: last.handles, max: Math.max(...samples.map((s) => s.handles)) },
    criteria: { maxGrowthBytes: options.maxGrowthBytes, toleranceBytes: options.toleranceBytes, maxErrorRate, confidence: fit.confidence },
    samples,
    snapshots,
    inconclusive: null,
  };
  result.inconclusive = inconclusive(result);
  return result;
}
