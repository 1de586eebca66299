/**
 * A token bucket: `perSecond` calls a second, at most `burst` of them at once, handed out in the
 * order asked for. A service with a per-second limit (HubSpot search: 5 a second per account) then
 * sees a batch of calls spread out instead of all at once.
 *
 * Callers that must wait queue up, and a turn is taken only when it is handed out: a caller that
 * gives up while it waits (its signal aborts) leaves the queue and takes no turn, so the callers
 * after it wait no longer than they would have without it.
 */
export class TokenBucket {
  private readonly intervalMs: number;
  /** performance.now() at which the bucket is next empty of reservations (its "theoretical arrival time"). */
  private nextAt = Number.NEGATIVE_INFINITY;
  /** Callers waiting for a turn, first first. */
  private readonly waiting: Array<{ grant(): void }> = [];
  /** Wakes the first waiter when its turn comes. */
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly perSecond: number,
    readonly burst = 1,
  ) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`perSecond must be a positive number, got ${perSecond}`);
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    this.intervalMs = 1_000 / perSecond;
  }

  /** How long a call asking now would wait, in ms (0 when a token is free): behind the callers already waiting. */
  delayMs(now = performance.now()): number {
    return Math.max(0, this.nextAt + this.waiting.length * this.intervalMs - (this.burst - 1) * this.intervalMs - now);
  }

  /** How long until the next turn is free, in ms (0 now). */
  private dueIn(now: number): number {
    return Math.max(0, this.nextAt - (this.burst - 1) * this.intervalMs - now);
  }

  /** Takes the next turn now. */
  private reserve(now: number): void {
    this.nextAt = Math.max(this.nextAt, now) + this.intervalMs;
  }

  /** Waits for a token. Rejects when `signal` aborts first; the caller then takes no turn. */
  take(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = performance.now();
    if (this.waiting.length === 0 && this.dueIn(now) === 0) {
      this.reserve(now);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        },
      };
      const abort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at < 0) return;
        this.waiting.splice(at, 1);
        if (at === 0) this.schedule();
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.waiting.push(waiter);
      if (this.waiting.length === 1) this.schedule();
    });
  }

  /** Hands out every turn due now, then sets the timer for the first waiter's. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (;;) {
      const first = this.waiting[0];
      if (!first) return;
      const now = performance.now();
      const wait = this.dueIn(now);
      if (wait > 0) {
        this.timer = setTimeout(() => this.schedule(), Math.ceil(wait));
        return;
      }
      this.waiting.shift();
      this.reserve(now);
      first.grant();
    }
  }
}
