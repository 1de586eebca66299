import type { QueueEvents } from 'bullmq';
import { percentile, type Throughput } from '../domain/snapshot.js';
import { parseJobOutcome } from './processor.js';

export interface ThroughputOptions {
  /** Window kept, in seconds (default 600: ten minutes). */
  windowSeconds?: number;
  /** Width of the buckets the snapshot carries (default 10 s). */
  bucketSeconds?: number;
  /** Durations kept for the p95 (the newest win). */
  maxDurations?: number;
  now?: () => number;
}

function durationOf(returnvalue: unknown): number | undefined {
  const total: unknown = parseJobOutcome(returnvalue)?.timings?.totalMs;
  return typeof total === 'number' && Number.isFinite(total) ? total : undefined;
}

/**
 * Scans finished fleet-wide per second over the last ten minutes, and their durations, from the
 * queue's event stream. A ring of one-second slots, each stamped with its second: a slot is
 * reset when reused, so nothing needs a timer and an idle server does no work.
 */
export class ThroughputTracker {
  private readonly window: number;
  private readonly bucketSeconds: number;
  private readonly maxDurations: number;
  private readonly now: () => number;
  private readonly seconds: Float64Array;
  private readonly completed: Uint32Array;
  private readonly failed: Uint32Array;
  /** [at ms, duration ms] pairs in arrival order, a ring of maxDurations. */
  private readonly durations: Float64Array;
  private durationCount = 0;
  private durationNext = 0;
  readonly since: number;

  constructor(options: ThroughputOptions = {}) {
    this.window = options.windowSeconds ?? 600;
    this.bucketSeconds = options.bucketSeconds ?? 10;
    this.maxDurations = options.maxDurations ?? 5_000;
    this.now = options.now ?? Date.now;
    this.seconds = new Float64Array(this.window).fill(-1);
    this.completed = new Uint32Array(this.window);
    this.failed = new Uint32Array(this.window);
    this.durations = new Float64Array(this.maxDurations * 2);
    this.since = this.now();
  }

  private slot(second: number): number {
    const i = second % this.window;
    if (this.seconds[i] !== second) {
      this.seconds[i] = second;
      this.completed[i] = 0;
      this.failed[i] = 0;
    }
    return i;
  }

  /** Counts one scan that finished for good. */
  record(outcome: 'completed' | 'failed', durationMs?: number): void {
    const at = this.now();
    const i = this.slot(Math.floor(at / 1000));
    if (outcome === 'failed') {
      this.failed[i]!++;
      return;
    }
    this.completed[i]!++;
    if (durationMs === undefined) return;
    this.durations[this.durationNext * 2] = at;
    this.durations[this.durationNext * 2 + 1] = durationMs;
    this.durationNext = (this.durationNext + 1) % this.maxDurations;
    this.durationCount = Math.min(this.durationCount + 1, this.maxDurations);
  }

  /** Counts the queue's `completed` and `failed` events (`failed` fires only once no attempt is left); returns a disposer. */
  attach(events: QueueEvents): () => void {
    const onCompleted = ({ returnvalue }: { returnvalue: unknown }) => this.record('completed', durationOf(returnvalue));
    const onFailed = () => this.record('failed');
    events.on('completed', onCompleted);
    events.on('failed', onFailed);
    return () => {
      events.off('completed', onCompleted);
      events.off('failed', onFailed);
    };
  }

  view(): Throughput {
    const nowSecond = Math.floor(this.now() / 1000);
    const count = (from: number, to: number, series: Uint32Array) => {
      let n = 0;
      for (let s = from; s <= to; s++) {
        const i = s % this.window;
        if (this.seconds[i] === s) n += series[i]!;
      }
      return n;
    };
    // Bucket k (oldest first) covers the seconds ending `(n - k - 1) * width` before now.
    const buckets: number[] = [];
    const n = Math.floor(this.window / this.bucketSeconds);
    for (let k = 0; k < n; k++) {
      const to = nowSecond - (n - k - 1) * this.bucketSeconds;
      buckets.push(count(to - this.bucketSeconds + 1, to, this.completed));
    }
    const minutes = Math.floor(this.window / 60);
    const perMinute: number[] = [];
    for (let m = 0; m < minutes; m++) {
      const to = nowSecond - (minutes - m - 1) * 60;
      perMinute.push(count(to - 59, to, this.completed));
    }
    const cutoff = (nowSecond - this.window + 1) * 1000;
    const recent: number[] = [];
    for (let k = 0; k < this.durationCount; k++) if (this.durations[k * 2]! >= cutoff) recent.push(this.durations[k * 2 + 1]!);
    const p95 = percentile(recent, 95);
    return {
      bucketSeconds: this.bucketSeconds,
      buckets,
      perMinute,
      lastMinute: count(nowSecond - 59, nowSecond, this.completed),
      failedLastMinute: count(nowSecond - 59, nowSecond, this.failed),
      p95Ms: p95 === null ? null : Math.round(p95),
      since: new Date(this.since).toISOString(),
    };
  }
}
