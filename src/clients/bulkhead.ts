import { BulkheadRejectedError, TaskCancelledError } from 'cockatiel';

/**
 * At most `capacity` calls at once, `queueCapacity` more waiting in order, the rest refused with
 * cockatiel's BulkheadRejectedError. cockatiel's own bulkhead keeps a call given up while it waits
 * in its (private) queue until a slot frees: the place stays taken meanwhile, and the freed slot
 * then goes to that cancelled call, which gives it up at once without starting the next in line (it
 * waits for yet another call to end). Here a waiting call leaves the queue as soon as its signal
 * aborts, and a freed slot goes straight to the first call still waiting.
 */
export class Bulkhead {
  private active = 0;
  private readonly queue: Array<{ start(): void }> = [];

  constructor(
    readonly capacity: number,
    readonly queueCapacity: number,
  ) {}

  /** Runs `fn` when a slot is free; TaskCancelledError when `signal` aborts before. */
  async execute<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) throw new TaskCancelledError();
    if (this.active < this.capacity) this.active++;
    else if (this.queue.length < this.queueCapacity) await this.slot(signal);
    else throw new BulkheadRejectedError(this.capacity, this.queueCapacity);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Waits in the queue for a slot handed over by a call that ends (`active` stays counted). */
  private slot(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry = {
        start: () => {
          signal.removeEventListener('abort', cancel);
          resolve();
        },
      };
      const cancel = () => {
        const at = this.queue.indexOf(entry);
        if (at >= 0) this.queue.splice(at, 1);
        reject(new TaskCancelledError());
      };
      signal.addEventListener('abort', cancel, { once: true });
      this.queue.push(entry);
    });
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next.start();
    else this.active--;
  }
}
