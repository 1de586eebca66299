import type { ScanView } from './job.js';
import type { Keys } from './keys.js';
import { rethrowAsUnavailable, type RedisClient } from './redis.js';

export interface BatchRecord {
  id: string;
  createdAt: string;
  ids: string[];
  requestId?: string;
}

/**
 * KEYS: result, cache entry, in-flight marker, the job's BullMQ lock. ARGV: record JSON, its TTL,
 * cache TTL ("0": no cache entry), scan id, lock token ("": not fenced). Returns 1, or 0 when the
 * lock is held by another token (or by none).
 */
const PUT_FINAL_SCRIPT = `
if ARGV[5] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[5] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '0' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3]) end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return 1
`;

/** Final scan records and batches in Redis, kept for RESULT_TTL. */
export class ResultStore {
  private readonly putFinalScript: (...args: Array<string | number>) => Promise<number>;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly ttlMs: number,
    private readonly cacheTtlMs: number,
  ) {
    redis.defineCommand('wcagaiPutFinal', { numberOfKeys: 4, lua: PUT_FINAL_SCRIPT });
    const r = redis as unknown as { wcagaiPutFinal(...a: Array<string | number>): Promise<number> };
    this.putFinalScript = (...a) => r.wcagaiPutFinal(...a);
  }

  async get(id: string): Promise<ScanView | null> {
    const raw = await this.redis.get(this.keys.result(id)).catch(rethrowAsUnavailable);
    return raw ? (JSON.parse(raw) as ScanView) : null;
  }

  async getMany(ids: readonly string[]): Promise<Array<ScanView | null>> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.result(id))).catch(rethrowAsUnavailable);
    return raws.map((raw) => (raw ? (JSON.parse(raw) as ScanView) : null));
  }

  /**
   * Stores a final record; a completed one also becomes the cache entry for its request, and the
   * request's in-flight marker goes if it still names this scan (a newer job's marker stays).
   * With `token`, the write is fenced by the job's BullMQ lock: a worker that lost its lock (cut
   * off from Redis longer than the lock lasts, while the stall check gave the job to another)
   * stores nothing and gets false, so a late attempt cannot overwrite what the new owner stores.
   */
  async putFinal(view: ScanView, cacheKey: string, token?: string): Promise<boolean> {
    const cacheTtl = view.status === 'completed' && this.cacheTtlMs > 0 ? this.cacheTtlMs : 0;
    const k = this.keys;
    const keys = [k.result(view.id), k.cache(cacheKey), k.inflight(cacheKey), `${k.job(view.id)}:lock`];
    return (await this.putFinalScript(...keys, JSON.stringify(view), this.ttlMs, cacheTtl, view.id, token ?? '')) === 1;
  }

  async putBatch(batch: BatchRecord): Promise<void> {
    await this.redis.set(this.keys.batch(batch.id), JSON.stringify(batch), 'PX', this.ttlMs).catch(rethrowAsUnavailable);
  }

  async getBatch(id: string): Promise<BatchRecord | null> {
    const raw = await this.redis.get(this.keys.batch(id)).catch(rethrowAsUnavailable);
    return raw ? (JSON.parse(raw) as BatchRecord) : null;
  }
}
