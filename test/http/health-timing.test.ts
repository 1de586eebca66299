import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timed } from '../../src/http/routes/health.js';

/** The health checks' deadline: a dependency's answer that came in while this process was stalled still counts. */

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  await redis.ping();
});
afterAll(() => redis?.disconnect());

/** Blocks this process's event loop, as a long GC or a starved machine would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

describe('health check deadline', () => {
  it('reports a PING answered while the event loop was stalled past the deadline as an answer', async () => {
    const pending = timed(() => redis.ping(), 200);
    // The PING is on the wire; its reply arrives during the stall, and the deadline passes too.
    stall(600);
    const r = await pending;
    expect(r.ok).toBe(true);
    expect(r.value).toBe('PONG');
    expect(r.ms).toBeGreaterThanOrEqual(600);
  });

  it('still times out a dependency that does not answer', async () => {
    const r = await timed(() => new Promise<never>(() => undefined), 150);
    expect(r.ok).toBe(false);
    expect(r.ms).toBeGreaterThanOrEqual(140);
  });

  it('reports a failure as not ok at once', async () => {
    const r = await timed(() => Promise.reject(new Error('connection closed')), 1_000);
    expect(r).toMatchObject({ ok: false });
    expect(r.ms).toBeLessThan(500);
  });
});
