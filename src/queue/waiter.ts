import type { QueueEvents } from 'bullmq';

/**
 * Lets requests wait for their scan to finish (`Prefer: wait=N`). One QueueEvents stream per
 * process feeds every waiter, so a hundred waiting clients cost one Redis subscription.
 */
export class CompletionWaiter {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly settle = ({ jobId }: { jobId: string }) => {
    const set = this.waiters.get(jobId);
    if (!set) return;
    this.waiters.delete(jobId);
    for (const wake of set) wake();
  };
  private readonly ignore = () => undefined;
  /** Closed: a wait returns at once (what a waiter woken by close() would answer). */
  private closed = false;

  /**
   * Listens on a QueueEvents stream the process already reads (the DLQ capture's: each stream
   * parses every event of the queue, so a second one would double that cost). Its owner closes it.
   */
  constructor(readonly events: QueueEvents) {
    events.on('completed', this.settle);
    events.on('failed', this.settle);
    events.on('error', this.ignore);
  }

  async ready(): Promise<void> {
    await this.events.waitUntilReady();
  }

  /**
   * Resolves true when the job finished within `ms`, false on timeout. `isDone` is checked after
   * subscribing, so a job that finished just before the call is not missed.
   */
  async wait(jobId: string, ms: number, isDone: () => Promise<boolean>, signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return isDone();
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
      // A signal aborted already fires no event.
      if (signal?.aborted) resolve('timeout');
      else signal?.addEventListener('abort', () => resolve('timeout'), { once: true });
    });
    try {
      if (await isDone()) return true;
      if ((await Promise.race([finished.then(() => 'done' as const), timedOut])) === 'done') return true;
      // At the deadline the scan may be done without its event here yet: it finished as the time
      // ran out (the event is still on its way), or its record is stored while its job is still
      // finishing (the CRM sync runs after the store). A client that hung up needs no answer.
      return !signal?.aborted && (await isDone());
    } finally {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.waiters.clear();
    this.events.off('completed', this.settle);
    this.events.off('failed', this.settle);
    this.events.off('error', this.ignore);
  }
}
