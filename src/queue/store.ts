import { WcagaiError } from '../errors/catalogue.js';
import type { ScanView } from './job.js';
import type { Keys } from './keys.js';
import { rethrowAsUnavailable, type RedisClient } from './redis.js';

export interface BatchRecord {
  id: string;
  createdAt: string;
  ids: string[];
  requestId?: string;
  /** A sitemap read only in part: the pages queued stop at `limit` (the request's, or MAX_BATCH_URLS). */
  truncation?: { limit: number; limitBy: 'limit' | 'MAX_BATCH_URLS' };
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

/**
 * A stored record read back. One that is not a JSON object is corrupt: INTERNAL (500, its message
 * and the record's id in the log, not in the answer), never REDIS_UNAVAILABLE, since Redis answered.
 */
function parseRecord<T>(raw: string, what: string, id: string): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw corrupt(what, id, 'not valid JSON', err);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw corrupt(what, id, 'not a JSON object');
  return value as T;
}

function corrupt(what: string, id: string, reason: string, cause?: unknown): WcagaiError {
  return new WcagaiError('INTERNAL', `stored record of ${what} ${id} is corrupt: ${reason}`, { ...(cause === undefined ? {} : { cause }), details: { [`${what}Id`]: id } });
}

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
    return raw ? parseRecord<ScanView>(raw, 'scan', id) : null;
  }

  async getMany(ids: readonly string[]): Promise<Array<ScanView | null>> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.result(id))).catch(rethrowAsUnavailable);
    return raws.map((raw, i) => (raw ? parseRecord<ScanView>(raw, 'scan', ids[i]!) : null));
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
    return raw ? parseRecord<BatchRecord>(raw, 'batch', id) : null;
  }

  /** Scan `originalId` of batch `batchId` was replayed from the DLQ as `replayId`: the batch counts the replay from now on. */
  async linkReplay(batchId: string, originalId: string, replayId: string): Promise<void> {
    const key = this.keys.batchReplays(batchId);
    await this.redis.multi().hset(key, originalId, replayId).pexpire(key, this.ttlMs).exec().catch(rethrowAsUnavailable);
  }

  /** The replays of a batch's scans (original scan id → latest replay id). */
  async batchReplays(batchId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.batchReplays(batchId)).catch(rethrowAsUnavailable);
  }
}
