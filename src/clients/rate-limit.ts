import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket: `perSecond` calls a second, at most `burst` of them at once, handed out in the
 * order asked for. A service with a per-second limit (HubSpot search: 5 a second per account) then
 * sees a batch of calls spread out instead of all at once.
 */
export class TokenBucket {
  private readonly intervalMs: number;
  /** performance.now() at which the bucket is next empty of reservations (its "theoretical arrival time"). */
  private nextAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly perSecond: number,
    readonly burst = 1,
  ) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError(`perSecond must be a positive number, got ${perSecond}`);
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`burst must be an integer >= 1, got ${burst}`);
    this.intervalMs = 1_000 / perSecond;
  }

  /** How long a call asking now would wait, in ms (0 when a token is free). */
  delayMs(now = performance.now()): number {
    return Math.max(0, this.nextAt - (this.burst - 1) * this.intervalMs - now);
  }

  /** Waits for a token. Rejects when `signal` aborts first (the token reserved is not given back). */
  async take(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = performance.now();
    const wait = this.delayMs(now);
    this.nextAt = Math.max(this.nextAt, now) + this.intervalMs;
    if (wait > 0) await sleep(wait, undefined, signal ? { signal } : {});
  }
}
