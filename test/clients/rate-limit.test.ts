import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/clients/rate-limit.js';

describe('TokenBucket', () => {
  it('gives the turn of a cancelled wait back: the next caller gets it, not the one after', async () => {
    // One a second: a turn is 1 000 ms, far longer than this test's own steps take.
    const bucket = new TokenBucket(1);
    await bucket.take(); // the first turn is free at once
    const controller = new AbortController();
    const cancelled = bucket.take(controller.signal);
    const at = performance.now();
    expect(bucket.delayMs(at)).toBeGreaterThan(1_000); // a third caller now would wait for the second turn after
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ name: 'AbortError' });
    // Given back: a caller asking now waits for the next turn only.
    expect(bucket.delayMs(at)).toBeLessThanOrEqual(1_000);
  });

  it('keeps its order and spacing when a waiter between two others is cancelled', async () => {
    const bucket = new TokenBucket(20); // a turn every 50 ms
    await bucket.take();
    const order: string[] = [];
    const b = new AbortController();
    const first = bucket.take().then(() => order.push('a'));
    const second = bucket.take(b.signal).then(
      () => order.push('b'),
      () => order.push('b cancelled'),
    );
    const third = bucket.take().then(() => order.push('c'));
    b.abort();
    await Promise.all([first, second, third]);
    expect(order).toEqual(['b cancelled', 'a', 'c']);
    // Two turns handed out after the first: the next one is at most one turn away (none left reserved for b).
    expect(bucket.delayMs()).toBeLessThanOrEqual(50);
  });

  it('rejects at once for a signal already aborted, reserving nothing', async () => {
    const bucket = new TokenBucket(1);
    await expect(bucket.take(AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    expect(bucket.delayMs()).toBe(0);
  });
});
