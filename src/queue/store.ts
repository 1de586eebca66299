import type { ScanView } from './job.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export interface BatchRecord {
  id: string;
  createdAt: string;
  ids: string[];
  requestId?: string;
}

/** Final scan records and batches in Redis, kept for RESULT_TTL. */
export class ResultStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly ttlMs: number,
    private readonly cacheTtlMs: number,
  ) {}

  async get(id: string): Promise<ScanView | null> {
    const raw = await this.redis.get(this.keys.result(id));
    return raw ? (JSON.parse(raw) as ScanView) : null;
  }

  async getMany(ids: readonly string[]): Promise<Array<ScanView | null>> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.result(id)));
    return raws.map((raw) => (raw ? (JSON.parse(raw) as ScanView) : null));
  }

  /** Stores a final record; a completed one also becomes the cache entry for its request. */
  async putFinal(view: ScanView, cacheKey: string): Promise<void> {
    const multi = this.redis.multi().set(this.keys.result(view.id), JSON.stringify(view), 'PX', this.ttlMs);
    if (view.status === 'completed' && this.cacheTtlMs > 0) multi.set(this.keys.cache(cacheKey), view.id, 'PX', this.cacheTtlMs);
    multi.del(this.keys.inflight(cacheKey));
    await multi.exec();
  }

  async putBatch(batch: BatchRecord): Promise<void> {
    await this.redis.set(this.keys.batch(batch.id), JSON.stringify(batch), 'PX', this.ttlMs);
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    const raw = await this.redis.get(this.keys.batch(id));
    return raw ? (JSON.parse(raw) as BatchRecord) : null;
  }
}
