import { hostname } from 'node:os';
import type { Keys } from './keys.js';
import { settleWithin, type RedisClient } from './redis.js';

/**
 * What a process is to the fleet: `worker` runs scans (`wcagai worker`, or `serve` with its embedded
 * worker); `api` serves the API and runs none (`serve --no-worker`). Only workers count as workers.
 */
export type ProcessRole = 'api' | 'worker';

/** What a worker reports of itself on each beat. */
export interface HeartbeatFigures {
  concurrency: number;
  active: number;
  scansDone: number;
  browserRestarts: number;
  [extra: string]: unknown;
}

/** What every heartbeat carries, whatever the process does. */
interface HeartbeatBase {
  id: string;
  host: string;
  pid: number;
  memory: { rss: number; heapUsed: number };
  startedAt: string;
  at: string;
  [extra: string]: unknown;
}

export interface WorkerHeartbeat extends HeartbeatFigures, HeartbeatBase {
  /** Absent from the heartbeats of versions before the role existed: read as a worker. */
  role: 'worker';
}

/** The heartbeat of a process that serves the API and runs no scans (its breakers in `breakers`). */
export interface ApiHeartbeat extends HeartbeatBase {
  role: 'api';
}

export type ProcessHeartbeat = WorkerHeartbeat | ApiHeartbeat;

function where(keys: Keys, role: ProcessRole): { set: string; key(id: string): string } {
  return role === 'worker' ? { set: keys.workers, key: keys.worker } : { set: keys.apiProcesses, key: keys.apiProcess };
}

export interface Heartbeat {
  beat(): Promise<void>;
  /**
   * Stops beating and removes the heartbeat, waiting for Redis at most `timeoutMs`. Over a
   * connection that is not ready (Redis unreachable) nothing is sent: the commands would wait in
   * the offline queue and never settle, and the key expires on its own three beats later.
   */
  stop(timeoutMs?: number): Promise<void>;
}

function publish(redis: RedisClient, keys: Keys, id: string, role: ProcessRole, read: () => Record<string, unknown>, intervalMs: number): Heartbeat {
  const startedAt = new Date().toISOString();
  const { set, key } = where(keys, role);
  const beat = async () => {
    const mem = process.memoryUsage();
    const hb = { ...read(), id, role, host: hostname(), pid: process.pid, startedAt, at: new Date().toISOString(), memory: { rss: mem.rss, heapUsed: mem.heapUsed } };
    await redis.multi().set(key(id), JSON.stringify(hb), 'PX', intervalMs * 3).sadd(set, id).exec();
  };
  void beat().catch(() => undefined);
  const timer = setInterval(() => void beat().catch(() => undefined), intervalMs);
  timer.unref();
  return {
    beat,
    async stop(timeoutMs = 1_000): Promise<void> {
      clearInterval(timer);
      if (redis.status !== 'ready') return;
      await settleWithin(redis.multi().del(key(id)).srem(set, id).exec(), timeoutMs);
    },
  };
}

/** Publishes a worker's heartbeat every `intervalMs`; the key expires three beats after the worker dies. */
export function startHeartbeat(redis: RedisClient, keys: Keys, id: string, read: () => HeartbeatFigures, intervalMs = 5_000): Heartbeat {
  return publish(redis, keys, id, 'worker', read, intervalMs);
}

/** Publishes the heartbeat of a process that serves the API without a worker (its breakers, from `read`), as a worker's is. */
export function startApiHeartbeat(redis: RedisClient, keys: Keys, id: string, read: () => Record<string, unknown>, intervalMs = 5_000): Heartbeat {
  return publish(redis, keys, id, 'api', read, intervalMs);
}

/** Live heartbeats in one set; ids whose key expired are dropped from the set. */
async function listSet(redis: RedisClient, set: string, key: (id: string) => string): Promise<Array<Record<string, unknown>>> {
  const ids = await redis.smembers(set);
  if (ids.length === 0) return [];
  const raws = await redis.mget(ids.map(key));
  const dead = ids.filter((_, i) => !raws[i]);
  if (dead.length) await redis.srem(set, ...dead);
  return raws.filter((r): r is string => !!r).map((r) => JSON.parse(r) as Record<string, unknown>);
}

const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);

/**
 * Live workers' heartbeats (scan workers only). A heartbeat without a role, from a version before
 * roles, is a worker's: only workers published heartbeats then.
 */
export async function listWorkers(redis: RedisClient, keys: Keys): Promise<WorkerHeartbeat[]> {
  const raws = await listSet(redis, keys.workers, keys.worker);
  return raws
    .filter((hb) => hb.role === undefined || hb.role === 'worker')
    .map((hb) => ({ ...hb, role: 'worker' }) as WorkerHeartbeat)
    .sort(byId);
}

/** Live heartbeats of the processes that serve the API without a worker. */
export async function listApiProcesses(redis: RedisClient, keys: Keys): Promise<ApiHeartbeat[]> {
  return (await listSet(redis, keys.apiProcesses, keys.apiProcess)).map((hb) => ({ ...hb, role: 'api' }) as ApiHeartbeat).sort(byId);
}

/** Every live process of the deployment, workers first, each with its role. */
export async function listProcesses(redis: RedisClient, keys: Keys): Promise<ProcessHeartbeat[]> {
  const [workers, apis] = await Promise.all([listWorkers(redis, keys), listApiProcesses(redis, keys)]);
  return [...workers, ...apis];
}
