import { build, type Histogram } from 'hdr-histogram-js';

/** Percentiles of a latency distribution, in milliseconds (null when nothing was recorded). */
export interface LatencySummary {
  count: number;
  min: number | null;
  avg: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/**
 * Every latency sample in an HDR histogram (microsecond resolution, 4 significant digits, up
 * to an hour; a percentile is at most 0.01 % above the sample it stands for, so it does not cross a
 * threshold no sample crossed by more than that): percentiles from all samples, not from per-second aggregates.
 */
export class LatencyHistogram {
  private readonly h: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 4, autoResize: true });

  /** Records one sample in milliseconds. */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.h.recordValue(Math.min(3_600_000_000, Math.max(1, Math.round(ms * 1_000))));
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** The value at percentile `p` (0-100) in ms, or null when empty. */
  percentile(p: number): number | null {
    return this.h.totalCount === 0 ? null : Math.min(round(this.h.maxValue / 1_000), round(this.h.getValueAtPercentile(p) / 1_000));
  }

  summary(): LatencySummary {
    if (this.h.totalCount === 0) return { count: 0, min: null, avg: null, p50: null, p90: null, p95: null, p99: null, max: null };
    const max = round(this.h.maxValue / 1_000);
    // A percentile reads the top of its bucket, which can lie above the largest sample itself.
    const at = (p: number) => Math.min(max, round(this.h.getValueAtPercentile(p) / 1_000));
    return {
      count: this.h.totalCount,
      min: Math.min(max, round(this.h.minNonZeroValue / 1_000)),
      avg: round(this.h.mean / 1_000),
      p50: at(50),
      p90: at(90),
      p95: at(95),
      p99: at(99),
      max,
    };
  }
}
