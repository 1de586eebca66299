/**
 * The in-flight marker (what an identical request is deduplicated against) lives as long as its
 * job may still run, however long the job waits in the queue; a marker whose job is gone still
 * expires. A producer with a marker lifetime of a second and a half stands in for the hour.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { cacheKeyOf } from '../../src/queue/job.js';
import { keysFor } from '../../src/queue/keys.js';
import { ScanProducer } from '../../src/queue/producer.js';
import { producerConnection, waitReady } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { uniquePrefix } from '../support/service.js';

// No worker runs here: nothing is ever fetched, so the targets need not exist.
const target = (n: string) => `http://127.0.0.1:9/${n}.html`;
const TTL_MS = 1_500;

let redis: RedisServer;
let conn: Redis;
const queues: Queue[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  conn = producerConnection(redis.url);
  await waitReady(conn);
});

afterAll(async () => {
  for (const q of queues) await q.obliterate({ force: true }).catch(() => undefined), await q.close();
  conn?.disconnect();
  await redis?.close();
});

function producerOf(prefix = uniquePrefix('inflight')) {
  const keys = keysFor(prefix);
  const queue = new Queue(keys.queueName, { connection: conn, prefix: keys.bullPrefix });
  queues.push(queue);
  const store = new ResultStore(conn, keys, 60_000, 60_000);
  const producer = new ScanProducer(queue, conn, keys, store, { attempts: 1, backoffMs: 100, maxQueueDepth: 100, inflightTtlMs: TTL_MS });
  const marker = (n: string) => keys.inflight(cacheKeyOf(target(n), DEFAULT_SCAN_OPTIONS));
  const submit = (n: string, priority: 'high' | 'normal' | 'low' = 'normal') => producer.submit(target(n), DEFAULT_SCAN_OPTIONS, { priority });
  return { keys, queue, store, producer, marker, submit };
}

/** Waits until `key` is gone from Redis (its TTL ran out). */
async function expired(key: string): Promise<void> {
  while ((await conn.exists(key)) === 1) await new Promise((r) => setTimeout(r, 100));
}

describe('in-flight marker lifetime', () => {
  it('keeps deduplicating against a job that waited in the queue longer than the marker lifetime, single and batched', async () => {
    const p = producerOf();
    const a = await p.submit('waits-long');
    const b = await p.submit('waits-long-high', 'high');
    const [c] = await p.producer.submitMany([target('waits-long-batch')], DEFAULT_SCAN_OPTIONS, { priority: 'low' });
    expect([a.outcome, b.outcome, c!.outcome]).toEqual(['new', 'new', 'new']);
    // Paused, as an operator may leave a queue: its jobs wait as long as it stays so.
    await p.queue.pause();
    // Nobody submits for longer than a marker lives.
    await new Promise((r) => setTimeout(r, TTL_MS + 500));

    expect(await p.submit('waits-long')).toEqual({ id: a.id, outcome: 'inflight' });
    expect(await p.submit('waits-long-high', 'high')).toEqual({ id: b.id, outcome: 'inflight' });
    expect(await p.producer.submitMany([target('waits-long-batch')], DEFAULT_SCAN_OPTIONS, { priority: 'low' })).toEqual([{ id: c!.id, outcome: 'inflight' }]);
    expect(await p.queue.count()).toBe(3);
    // The marker is back with a lifetime, not made permanent.
    const ttl = await conn.pttl(p.marker('waits-long'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(TTL_MS);
  });

  it('still lets the marker of a job that is gone, or whose final record is stored, expire', async () => {
    const p = producerOf();
    await conn.set(p.marker('gone'), 'scan_gone0', 'PX', TTL_MS);
    const done = await p.submit('recorded');
    // Its final record stored, the job not finished yet (as while the CRM sync runs): the marker was deleted with the store.
    await p.store.putFinal({ id: done.id, status: 'completed', url: target('recorded'), options: DEFAULT_SCAN_OPTIONS, attempts: 1, createdAt: null, startedAt: null, finishedAt: null, cached: false }, cacheKeyOf(target('recorded'), DEFAULT_SCAN_OPTIONS));
    expect(await conn.exists(p.marker('recorded'))).toBe(0);
    await expired(p.marker('gone'));
    // Decisions made after the marker lifetime: neither marker comes back.
    await new Promise((r) => setTimeout(r, TTL_MS / 2));
    expect((await p.submit('other')).outcome).toBe('new');
    expect(await conn.exists(p.marker('gone'))).toBe(0);
    expect(await conn.exists(p.marker('recorded'))).toBe(0);
  });
});
