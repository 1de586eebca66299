import { readFileSync } from 'node:fs';
import { linearRegression, quantileSorted } from '../../../src/diagnostics/stats.js';
import { processTreeRss } from '../../../src/scanner/browser.js';
import { descendants } from '../../support/processes.js';

const MB = 2 ** 20;

/** Resident set of one process in bytes (VmRSS), or undefined once it is gone. */
export function processRss(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Memory of every Chromium tree `parentPid` launched, in bytes: each direct Chromium child with
 * all its descendants, PSS per process as the pool's own recycling measures it. Summing over the
 * children (not one remembered pid) keeps counting across a browser relaunch.
 */
export function chromiumRss(parentPid: number): number {
  const browsers = descendants(parentPid).filter((p) => p.ppid === parentPid && /chrom/i.test(p.comm));
  return browsers.reduce((sum, p) => sum + processTreeRss(p.pid), 0);
}

export interface MemorySample {
  /** ms since the sampler started. */
  t: number;
  nodeMb: number;
  chromiumMb: number;
}

/** Samples the Node RSS of `pid` and its Chromium trees every `intervalMs`, until stopped. */
export function sampleMemory(pid: number, intervalMs: number): { samples: MemorySample[]; stop(): MemorySample[] } {
  const samples: MemorySample[] = [];
  const started = Date.now();
  const take = () => {
    const node = processRss(pid);
    if (node === undefined) return;
    samples.push({ t: Date.now() - started, nodeMb: node / MB, chromiumMb: chromiumRss(pid) / MB });
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      return samples;
    },
  };
}

/** A memory series' trend: least-squares slope in MB per minute with its 95 % confidence interval. */
export interface Trend {
  samples: number;
  startMb: number;
  endMb: number;
  maxMb: number;
  slopeMbPerMin: number;
  ci95: [number, number];
  r2: number;
  /**
   * The climb still under way at the end: the median of the last third of the samples minus the
   * median of the middle third, per minute between their midpoints. A steady climb reads about
   * its slope here; one step that then stays flat (a renderer or cache coming up once) reads ~0,
   * where a straight-line fit over ten minutes turns it into a slope.
   */
  lateClimbMbPerMin: number;
}

const median = (xs: readonly number[]) => quantileSorted([...xs].sort((a, b) => a - b), 0.5);

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** The trend of `pick` over the samples taken at or after `fromMs`. */
export function trendOf(samples: readonly MemorySample[], pick: (s: MemorySample) => number, fromMs: number): Trend {
  const used = samples.filter((s) => s.t >= fromMs);
  const fit = linearRegression(
    used.map((s) => s.t / 60_000),
    used.map(pick),
  );
  const ys = used.map(pick);
  const third = Math.floor(used.length / 3);
  const middle = used.slice(third, 2 * third);
  const last = used.slice(2 * third);
  const midMinutes = (part: readonly MemorySample[]) => (part[0]!.t + part.at(-1)!.t) / 2 / 60_000;
  const lateClimb = third > 0 ? (median(last.map(pick)) - median(middle.map(pick))) / (midMinutes(last) - midMinutes(middle)) : 0;
  return {
    samples: used.length,
    startMb: round(ys[0] ?? 0, 1),
    endMb: round(ys.at(-1) ?? 0, 1),
    maxMb: round(Math.max(...ys), 1),
    slopeMbPerMin: round(fit.slope),
    ci95: [round(fit.slopeCi[0]), round(fit.slopeCi[1])],
    r2: round(fit.r2, 3),
    lateClimbMbPerMin: round(lateClimb),
  };
}
