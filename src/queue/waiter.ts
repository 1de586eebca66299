import { QueueEvents } from 'bullmq';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

/**
 * Lets requests wait for their scan to finish (`Prefer: wait=N`). One QueueEvents stream per
 * process feeds every waiter, so a hundred waiting clients cost one Redis subscription.
 */
export class CompletionWaiter {
  /** The process's QueueEvents stream (metrics and `wcagai top`'s feed subscribe to it too). */
  readonly events: QueueEvents;
  private readonly waiters = new Map<string, Set<() => void>>();
  /** The connection of a stream this waiter opened itself; null when it listens on a shared one. */
  private readonly connection: RedisClient | null;
  private readonly settle = ({ jobId }: { jobId: string }) => {
    const set = this.waiters.get(jobId);
    if (!set) return;
    this.waiters.delete(jobId);
    for (const wake of set) wake();
  };
  private readonly ignore = () => undefined;

  /**
   * Listens on `source` when it is a QueueEvents stream the process already reads (each stream
   * parses every event of the queue, so a second one would double that cost), which its owner
   * closes. Given a connection (dedicated and blocking-capable: maxRetriesPerRequest null, no
   * command timeout), opens a stream of its own on it.
   */
  constructor(source: RedisClient | QueueEvents, keys?: Keys) {
    if (source instanceof QueueEvents) {
      this.events = source;
      this.connection = null;
    } else {
      if (!keys) throw new TypeError('CompletionWaiter: the queue keys are needed to open a stream');
      // The connection is this waiter's alone: without a listener, ioredis prints every failed
      // reconnection attempt of a Redis outage as "Unhandled error event". QueueEvents reconnects by itself.
      source.on('error', () => undefined);
      this.connection = source;
      this.events = new QueueEvents(keys.queueName, { connection: source, prefix: keys.bullPrefix });
    }
    this.events.on('completed', this.settle);
    this.events.on('failed', this.settle);
    this.events.on('error', this.ignore);
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
    this.events.off('completed', this.settle);
    this.events.off('failed', this.settle);
    this.events.off('error', this.ignore);
    if (!this.connection) return;
    await this.events.close();
    this.connection.disconnect();
  }
}
