import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/domain/snapshot.js';
import { adminEvents } from '../../src/http/routes/admin-events.js';
import { ThroughputTracker } from '../../src/queue/throughput.js';
import { SseParser } from '../../src/tui/sse.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, waitFor, type TestService } from '../support/service.js';
import { healthySnapshot, seedDlq, writeHeartbeats } from './fixtures.js';

/**
 * GET /admin/events: one shared snapshot computation a second whatever the number of clients,
 * started by the first client and stopped after the last; the real service's stream and
 * /admin/snapshot against real Redis; the throughput ring.
 */

const TOKEN = 'events-test-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** An SSE client: collects the `seq` of every snapshot it receives until closed. */
function subscribe(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const seqs: number[] = [];
  const snapshots: Snapshot[] = [];
  let retry: number | null = null;
  const parser = new SseParser({
    onEvent: (e) => {
      if (e.event !== 'snapshot') return;
      const s = JSON.parse(e.data) as Snapshot;
      seqs.push(s.seq);
      snapshots.push(s);
    },
    onRetry: (ms) => (retry = ms),
  });
  const done = (async () => {
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
    const type = res.headers.get('content-type');
    if (!res.ok || !res.body) return { status: res.status, type };
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // aborted
    }
    return { status: res.status, type };
  })();
  return {
    seqs,
    snapshots,
    get retry() {
      return retry;
    },
    done,
    close: () => controller.abort(),
  };
}

describe('the broadcaster behind /admin/events', () => {
  let app: FastifyInstance;
  let base: string;
  let computations = 0;
  let events: ReturnType<typeof adminEvents>;

  beforeAll(async () => {
    events = adminEvents({
      compute: async () => {
        computations++;
        await new Promise((r) => setTimeout(r, 5));
        return healthySnapshot({ seq: computations });
      },
      heartbeatMs: 200,
    });
    app = Fastify();
    events.routes(app);
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await app?.close();
  });

  it('computes one snapshot a second for 5 clients, sends each to all of them, and stops when the last leaves', async () => {
    expect(events.broadcaster.running).toBe(false);
    const clients = Array.from({ length: 5 }, () => subscribe(`${base}/admin/events`));
    await waitFor(() => clients.every((c) => c.seqs.length >= 1), { what: 'a first snapshot on every client' });
    const before = computations;
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 3_200));
    const seconds = (Date.now() - started) / 1000;
    const during = computations - before;
    // One a second (±1 for timer phase), not five.
    expect(during).toBeGreaterThanOrEqual(Math.floor(seconds) - 1);
    expect(during).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    expect(events.broadcaster.subscribers).toBe(5);
    // Every client got the same snapshots (by seq), whenever it joined.
    const last = Math.min(...clients.map((c) => c.seqs[c.seqs.length - 1]!));
    const common = clients.map((c) => c.seqs.filter((s) => s >= 2 && s <= last));
    for (const seqs of common) expect(seqs).toEqual(common[0]);
    expect(clients[0]!.retry).toBe(2_000);

    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.done));
    await waitFor(() => events.broadcaster.subscribers === 0, { what: 'the streams to close' });
    expect(events.broadcaster.running).toBe(false);
    const idle = computations;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(computations).toBe(idle);
  });

  it('GET /admin/snapshot shares a fresh frame instead of computing again', async () => {
    const first = await (await fetch(`${base}/admin/snapshot`)).json();
    const again = await Promise.all(Array.from({ length: 5 }, async () => (await fetch(`${base}/admin/snapshot`)).json()));
    expect(again.every((s) => s.seq === first.seq)).toBe(true);
  });

  it('closes open streams when the server closes, so shutdown does not wait for them', async () => {
    const client = subscribe(`${base}/admin/events`);
    await waitFor(() => client.seqs.length >= 1, { what: 'a snapshot' });
    const started = Date.now();
    await app.close();
    await client.done;
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('the throughput ring', () => {
  it('counts completions per 10 s bucket and per minute over 10 minutes, with the p95 of durations', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const t = new ThroughputTracker({ now: () => now });
    for (let s = 0; s < 600; s++) {
      for (let k = 0; k < (s < 300 ? 1 : 3); k++) t.record('completed', 1_000 + (s % 100) * 10);
      if (s % 60 === 0) t.record('failed');
      now += 1_000;
    }
    now -= 1_000;
    const v = t.view();
    expect(v.buckets).toHaveLength(60);
    expect(v.perMinute).toEqual([60, 60, 60, 60, 60, 180, 180, 180, 180, 180]);
    expect(v.lastMinute).toBe(180);
    expect(v.failedLastMinute).toBe(1);
    expect(v.p95Ms).toBe(1_940);
    // Eleven minutes later, all of it has left the window.
    now += 660_000;
    expect(t.view().perMinute.every((n) => n === 0)).toBe(true);
    expect(t.view().p95Ms).toBeNull();
  });
});

describe('/admin/events on the real service (real Redis)', () => {
  let redis: RedisServer;
  let svc: TestService;
  let base: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    svc = await startTestService({ redisUrl: redis.url, settings: { ADMIN_TOKEN: TOKEN } });
    base = await svc.service.app!.listen({ port: 0, host: '127.0.0.1' });
  });

  afterAll(async () => {
    await svc?.close();
    await redis?.close();
  });

  it('needs the admin token', async () => {
    expect((await fetch(`${base}/admin/events`)).status).toBe(401);
    expect((await fetch(`${base}/admin/snapshot`)).status).toBe(401);
  });

  it('streams the fleet to 5 clients from one computation a second: health, workers and their breakers, DLQ, alerts, throughput', async () => {
    await writeHeartbeats(svc.service.redis, svc.service.keys, 10);
    await seedDlq(svc.service.redis, svc.service.keys, 3);
    const clients = Array.from({ length: 5 }, () => subscribe(`${base}/admin/events`, AUTH));
    await waitFor(() => clients.every((c) => c.seqs.length >= 3), { what: '3 snapshots on every client', timeoutMs: 20_000 });
    const s = clients[0]!.snapshots.at(-1)!;
    expect(s).toMatchObject({ version: 1, serviceVersion: expect.any(String), queue: { waiting: 0, paused: false, maxCapacity: expect.any(Number) } });
    expect(s.health).toMatchObject({ checks: { redis: { status: 'up' } } });
    expect(s.health).not.toHaveProperty('workers');
    expect(s.workers).toHaveLength(10);
    expect(s.workers[0]).toMatchObject({ host: expect.stringMatching(/^fake-host-/), concurrency: 4, stale: false, browserUp: true });
    // This process's five breakers and the ten workers' heartbeats, merged per service.
    expect(s.breakers!.map((b) => b.name).sort()).toEqual(['ai', 'apollo', 'hubspot', 'pagerduty', 'slack']);
    expect(s.breakers![0]!.processes).toHaveLength(11);
    expect(s.dlq).toMatchObject({ size: 3 });
    expect(s.dlq!.newest).toHaveLength(3);
    expect(s.throughput.buckets).toHaveLength(60);
    // seq counts this server's computations: over the clients' shared window they advanced by about one a second.
    const span = (Date.parse(clients[0]!.snapshots.at(-1)!.at) - Date.parse(clients[0]!.snapshots[0]!.at)) / 1000;
    const seqSpan = clients[0]!.seqs.at(-1)! - clients[0]!.seqs[0]!;
    expect(seqSpan).toBeLessThanOrEqual(Math.round(span) + 1);
    const polled = await fetch(`${base}/admin/snapshot`, { headers: AUTH });
    expect(polled.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await polled.json()) as Snapshot).seq).toBeLessThanOrEqual(clients[0]!.seqs.at(-1)! + 1);
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.done));
  });

  it('/health/detailed still answers as before (the same computation)', async () => {
    const res = await svc.get('/health/detailed');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: expect.any(String), checks: { redis: { status: 'up' } }, queue: { capacity: 'healthy' }, workers: expect.any(Array), dlq: { size: 3 }, circuitBreakers: { healthy: true } });
  });
});
