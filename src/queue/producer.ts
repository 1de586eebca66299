import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Priority } from '../domain/request.js';
import type { ScanOptions } from '../domain/scan.js';
import { WcagaiError } from '../errors/catalogue.js';
import { cacheKeyOf, JOB_SCHEMA_VERSION, newScanId, PRIORITY, type ScanJobData, type ScanStatus, type ScanView } from './job.js';
import type { Keys } from './keys.js';
import type { ResultStore } from './store.js';

/**
 * One round trip decides a submission: a fresh cached result, a job already in flight for the
 * same request, a full queue (admission control), or a new job whose in-flight marker is set.
 */
const ADMIT_SCRIPT = `
local cached = redis.call('GET', KEYS[1])
if cached and redis.call('EXISTS', KEYS[7] .. cached) == 1 then return {'cached', cached} end
local inflight = redis.call('GET', KEYS[2])
if inflight then return {'inflight', inflight} end
local depth = redis.call('LLEN', KEYS[3]) + redis.call('LLEN', KEYS[4]) + redis.call('ZCARD', KEYS[5]) + redis.call('LLEN', KEYS[6])
if depth + tonumber(ARGV[4]) > tonumber(ARGV[3]) then return {'full', tostring(depth)} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'new', ARGV[1]}
`;

export interface SubmitContext {
  priority: Priority;
  requestId?: string;
  batchId?: string;
  dlqId?: string;
  /** Skip cache and dedup (replays of failed scans must run again). */
  fresh?: boolean;
}

export type SubmitOutcome = 'new' | 'inflight' | 'cached';

export interface ProducerSettings {
  attempts: number;
  backoffMs: number;
  maxQueueDepth: number;
  inflightTtlMs: number;
}

export interface Capacity {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
  paused: boolean;
  maxCapacity: number;
  utilizationPercent: number;
  state: 'healthy' | 'warning' | 'critical';
}

type Admit = (keys: string[], args: Array<string | number>) => Promise<[string, string]>;

/** Adds scans to the BullMQ queue with cache, in-flight dedup and admission control. */
export class ScanProducer {
  private readonly admit: Admit;

  constructor(
    readonly queue: Queue,
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly store: ResultStore,
    private readonly settings: ProducerSettings,
  ) {
    redis.defineCommand('wcagaiAdmit', { numberOfKeys: 7, lua: ADMIT_SCRIPT });
    const r = redis as unknown as { wcagaiAdmit(...a: Array<string | number>): Promise<[string, string]> };
    this.admit = (k, a) => r.wcagaiAdmit(...k, ...a);
  }

  private admitKeys(cacheKey: string): string[] {
    const k = this.keys;
    return [k.cache(cacheKey), k.inflight(cacheKey), k.wait, k.paused, k.prioritized, k.active, k.result('')];
  }

  private jobOptions(id: string, ctx: SubmitContext) {
    return {
      jobId: id,
      priority: PRIORITY[ctx.priority],
      attempts: this.settings.attempts,
      backoff: { type: 'exponential', delay: this.settings.backoffMs, jitter: 0.5 },
      removeOnComplete: { age: 3_600, count: 10_000 },
      removeOnFail: { age: 7 * 86_400, count: 100_000 },
    };
  }

  private data(url: string, options: ScanOptions, cacheKey: string, ctx: SubmitContext): ScanJobData {
    return {
      v: JOB_SCHEMA_VERSION,
      url,
      options,
      cacheKey,
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      ...(ctx.batchId ? { batchId: ctx.batchId } : {}),
      ...(ctx.dlqId ? { dlqId: ctx.dlqId } : {}),
    };
  }

  /** Queues one scan (URL already validated), or answers with the cached or in-flight one. */
  async submit(url: string, options: ScanOptions, ctx: SubmitContext): Promise<{ id: string; outcome: SubmitOutcome }> {
    const cacheKey = cacheKeyOf(url, options);
    const id = newScanId();
    for (let attempt = 0; ; attempt++) {
      const [outcome, value] = ctx.fresh
        ? (await this.admitFresh(id, cacheKey))
        : await this.redisCall(() => this.admit(this.admitKeys(cacheKey), [id, this.settings.inflightTtlMs, this.settings.maxQueueDepth, 1]));
      if (outcome === 'full') throw this.queueFull(Number(value));
      if (outcome === 'cached') return { id: value, outcome: 'cached' };
      if (outcome === 'inflight') {
        // The marker outlives a job that vanished or failed without a final record: clear it, try once more.
        if (attempt === 0 && !(await this.isLive(value))) {
          await this.redis.del(this.keys.inflight(cacheKey)).catch(() => 0);
          continue;
        }
        return { id: value, outcome: 'inflight' };
      }
      try {
        await this.queue.add('scan', this.data(url, options, cacheKey, ctx), this.jobOptions(id, ctx));
      } catch (err) {
        await this.redis.del(this.keys.inflight(cacheKey)).catch(() => 0);
        throw toRedisError(err);
      }
      return { id, outcome: 'new' };
    }
  }

  /** Queues many scans at once (batches): one admission decision for all of them. */
  async submitMany(urls: readonly string[], options: ScanOptions, ctx: SubmitContext): Promise<Array<{ id: string; outcome: SubmitOutcome }>> {
    const depth = await this.depth();
    if (depth + urls.length > this.settings.maxQueueDepth) throw this.queueFull(depth);
    const out: Array<{ id: string; outcome: SubmitOutcome }> = [];
    const bulk: Array<{ name: string; data: ScanJobData; opts: ReturnType<ScanProducer['jobOptions']> }> = [];
    for (const url of urls) {
      const cacheKey = cacheKeyOf(url, options);
      const id = newScanId();
      // Depth was checked for the whole batch above; the script only decides cache and dedup here.
      const [outcome, value] = await this.redisCall(() => this.admit(this.admitKeys(cacheKey), [id, this.settings.inflightTtlMs, Number.MAX_SAFE_INTEGER, 0]));
      if (outcome === 'new') bulk.push({ name: 'scan', data: this.data(url, options, cacheKey, ctx), opts: this.jobOptions(id, ctx) });
      out.push({ id: value, outcome: outcome as SubmitOutcome });
    }
    if (bulk.length) {
      try {
        await this.queue.addBulk(bulk);
      } catch (err) {
        await this.redis.del(...bulk.map((b) => this.keys.inflight(b.data.cacheKey))).catch(() => 0);
        throw toRedisError(err);
      }
    }
    return out;
  }

  private async admitFresh(id: string, cacheKey: string): Promise<[string, string]> {
    const depth = await this.depth();
    if (depth + 1 > this.settings.maxQueueDepth) return ['full', String(depth)];
    await this.redisCall(() => this.redis.set(this.keys.inflight(cacheKey), id, 'PX', this.settings.inflightTtlMs));
    return ['new', id];
  }

  private async isLive(id: string): Promise<boolean> {
    const job = await this.redisCall(() => Job.fromId(this.queue, id));
    if (!job) return false;
    const state = await job.getState();
    return state !== 'failed' && state !== 'completed' && state !== 'unknown';
  }

  private queueFull(depth: number): WcagaiError {
    return new WcagaiError('QUEUE_FULL', `queue holds ${depth} scans, its limit is ${this.settings.maxQueueDepth}; retry later`, {
      details: { retryAfterSeconds: 5, depth, maxQueueDepth: this.settings.maxQueueDepth },
    });
  }

  /** waiting + active, the figure admission control compares with MAX_QUEUE_DEPTH. */
  async depth(): Promise<number> {
    const k = this.keys;
    const [[, wait], [, paused], [, prio], [, active]] = (await this.redisCall(() =>
      this.redis.multi().llen(k.wait).llen(k.paused).zcard(k.prioritized).llen(k.active).exec(),
    )) as Array<[unknown, number]> as [[unknown, number], [unknown, number], [unknown, number], [unknown, number]];
    return wait + paused + prio + active;
  }

  /** Queue figures for health, the API and the dashboard. */
  async capacity(): Promise<Capacity> {
    const counts = await this.redisCall(() => this.queue.getJobCounts('waiting', 'prioritized', 'paused', 'active', 'delayed', 'failed', 'completed'));
    const paused = await this.redisCall(() => this.queue.isPaused());
    const waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.paused ?? 0);
    const active = counts.active ?? 0;
    const max = this.settings.maxQueueDepth;
    const utilizationPercent = Math.round(((waiting + active) / max) * 1000) / 10;
    return {
      waiting,
      active,
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
      completed: counts.completed ?? 0,
      paused,
      maxCapacity: max,
      utilizationPercent,
      state: utilizationPercent >= 100 ? 'critical' : utilizationPercent >= 80 ? 'warning' : 'healthy',
    };
  }

  /** The scan as the API shows it: the final record when there is one, else the live job. */
  async view(id: string): Promise<ScanView | null> {
    const stored = await this.redisCall(() => this.store.get(id));
    if (stored) return stored;
    const job = await this.redisCall(() => Job.fromId<ScanJobData>(this.queue, id));
    if (!job) return null;
    const state = await this.redisCall(() => job.getState());
    const status: ScanStatus = state === 'active' ? 'active' : state === 'completed' ? 'completed' : state === 'failed' ? 'failed' : 'queued';
    const iso = (t?: number) => (t ? new Date(t).toISOString() : null);
    return {
      id,
      status,
      url: job.data.url,
      options: job.data.options,
      attempts: job.attemptsMade,
      createdAt: iso(job.timestamp),
      startedAt: iso(job.processedOn),
      finishedAt: iso(job.finishedOn),
      cached: false,
      ...(job.data.requestId ? { requestId: job.data.requestId } : {}),
      ...(job.data.batchId ? { batchId: job.data.batchId } : {}),
      ...(status === 'failed' ? { error: { code: 'SCAN_FAILED', message: job.failedReason ?? 'failed', retryable: false } } : {}),
    };
  }

  private async redisCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toRedisError(err);
    }
  }
}

/** Redis failures become REDIS_UNAVAILABLE (503) so clients know to retry. */
export function toRedisError(err: unknown): Error {
  if (err instanceof WcagaiError) return err;
  return new WcagaiError('REDIS_UNAVAILABLE', `queue store unavailable: ${(err as Error).message}`, { cause: err });
}
