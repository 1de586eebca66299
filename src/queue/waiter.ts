import { QueueEvents } from 'bullmq';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * Lets requests wait for their scan to finish (`Prefer: wait=N`). One QueueEvents stream per
 * process feeds every waiter, so a hundred waiting clients cost one Redis subscription.
 */
export class CompletionWaiter {
  /** The process's one QueueEvents stream (metrics subscribe to it too). */
  readonly events: QueueEvents;
  private readonly waiters = new Map<string, Set<() => void>>();

  /** `connection` must be dedicated and blocking-capable (maxRetriesPerRequest null, no command timeout). */
  constructor(private readonly connection: RedisClient, keys: Keys) {
    // The connection is this waiter's alone: without a listener, ioredis prints every failed
    // reconnection attempt of a Redis outage as "Unhandled error event". QueueEvents reconnects by itself.
    connection.on('error', () => undefined);
    this.events = new QueueEvents(keys.queueName, { connection, prefix: keys.bullPrefix });
    const settle = ({ jobId }: { jobId: string }) => {
      const set = this.waiters.get(jobId);
      if (!set) return;
      this.waiters.delete(jobId);
      for (const wake of set) wake();
    };
    this.events.on('completed', settle);
    this.events.on('failed', settle);
    this.events.on('error', () => undefined);
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /**
   * Resolves true when the job finished within `ms`, false on timeout. `isDone` is checked after
   * subscribing, so a job that finished just before the call is not missed.
   */
  async wait(jobId: string, ms: number, isDone: () => Promise<boolean>, signal?: AbortSignal): Promise<boolean> {
    let wake!: () => void;
    const finished = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const set = this.waiters.get(jobId) ?? new Set();
    set.add(wake);
    this.waiters.set(jobId, set);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ms);
      signal?.addEventListener('abort', () => resolve('timeout'), { once: true });
    });
    try {
      if (await isDone()) return true;
      return (await Promise.race([finished.then(() => 'done' as const), timedOut])) === 'done';
    } finally {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
    }
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.waiters.clear();
    await this.events.close();
    this.connection.disconnect();
  }
}
