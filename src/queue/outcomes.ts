import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

const MINUTE = 60_000;

/**
 * Final scan outcomes per minute in Redis, fleet-wide: the alert manager's error rate is read
 * from here whichever process evaluates. Buckets expire after two hours.
 */
export class OutcomeCounter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly now: () => number = Date.now,
  ) {}

  private bucket(minute: number): string {
    return `${this.keys.bullPrefix}:outcomes:${minute}`;
  }

  /** Counts one scan that finished for good (completed, or failed with no retry left). */
  async record(outcome: 'completed' | 'failed'): Promise<void> {
    const key = this.bucket(Math.floor(this.now() / MINUTE));
    await this.redis.multi().hincrby(key, outcome, 1).pexpire(key, 2 * 3_600_000).exec();
  }

  /** Outcomes of the last `windowMs` (whole minutes, the current one included). */
  async window(windowMs: number): Promise<{ completed: number; failed: number; windowMs: number }> {
    const current = Math.floor(this.now() / MINUTE);
    const count = Math.max(1, Math.ceil(windowMs / MINUTE));
    const multi = this.redis.multi();
    for (let m = current - count + 1; m <= current; m++) multi.hmget(this.bucket(m), 'completed', 'failed');
    const replies = ((await multi.exec()) ?? []) as Array<[Error | null, Array<string | null>]>;
    let completed = 0;
    let failed = 0;
    for (const [err, values] of replies) {
      if (err) throw err;
      completed += Number(values[0] ?? 0);
      failed += Number(values[1] ?? 0);
    }
    return { completed, failed, windowMs };
  }
}
