import { hostname } from 'node:os';
import type { Keys } from './keys.js';
import { settleWithin, type RedisClient } from './redis.js';

/** What a worker reports of itself on each beat. */
export interface HeartbeatFigures {
  concurrency: number;
  active: number;
  scansDone: number;
  browserRestarts: number;
  [extra: string]: unknown;
}

export interface WorkerHeartbeat extends HeartbeatFigures {
  id: string;
  host: string;
  pid: number;
  memory: { rss: number; heapUsed: number };
  startedAt: string;
  at: string;
}

/** Publishes a worker's heartbeat every `intervalMs`; the key expires three beats after the worker dies. */
export function startHeartbeat(redis: RedisClient, keys: Keys, id: string, read: () => HeartbeatFigures, intervalMs = 5_000) {
  const startedAt = new Date().toISOString();
  const beat = async () => {
    const mem = process.memoryUsage();
    const hb: WorkerHeartbeat = { ...read(), id, host: hostname(), pid: process.pid, startedAt, at: new Date().toISOString(), memory: { rss: mem.rss, heapUsed: mem.heapUsed } };
    await redis.multi().set(keys.worker(id), JSON.stringify(hb), 'PX', intervalMs * 3).sadd(keys.workers, id).exec();
  };
  void beat().catch(() => undefined);
  const timer = setInterval(() => void beat().catch(() => undefined), intervalMs);
  timer.unref();
  return {
    beat,
    /**
     * Stops beating and removes the heartbeat, waiting for Redis at most `timeoutMs`. Over a
     * connection that is not ready (Redis unreachable) nothing is sent: the commands would wait in
     * the offline queue and never settle, and the key expires on its own three beats later.
     */
    async stop(timeoutMs = 1_000): Promise<void> {
      clearInterval(timer);
      if (redis.status !== 'ready') return;
      await settleWithin(redis.multi().del(keys.worker(id)).srem(keys.workers, id).exec(), timeoutMs);
    },
  };
}

/** Live workers' heartbeats; ids whose key expired are dropped from the set. */
export async function listWorkers(redis: RedisClient, keys: Keys): Promise<WorkerHeartbeat[]> {
  const ids = await redis.smembers(keys.workers);
  if (ids.length === 0) return [];
  const raws = await redis.mget(ids.map((id) => keys.worker(id)));
  const dead = ids.filter((_, i) => !raws[i]);
  if (dead.length) await redis.srem(keys.workers, ...dead);
  return raws.filter((r): r is string => !!r).map((r) => JSON.parse(r) as WorkerHeartbeat).sort((a, b) => a.id.localeCompare(b.id));
}
