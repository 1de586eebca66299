import type { RedisClient } from '../../src/queue/redis.js';
import type { DlqEntry } from '../../src/domain/dlq.js';
import type { BreakerRow, DlqRow, Snapshot, WorkerRow } from '../../src/domain/snapshot.js';
import { DlqStore } from '../../src/queue/dlq-store.js';
import type { Keys } from '../../src/queue/keys.js';

/** A fixed clock for snapshot renders: 2026-01-02 03:04:05 UTC. */
export const NOW = Date.parse('2026-01-02T03:04:05.000Z');
export const iso = (msAgo: number) => new Date(NOW - msAgo).toISOString();

const closed = (name: string): BreakerRow => ({ name, state: 'CLOSED', failures: 0, openedAt: null, lastFailure: null, processes: [{ process: 'api-1', state: 'CLOSED', failures: 0, openedAt: null }], uniform: true });

export function worker(i: number, over: Partial<WorkerRow> = {}): WorkerRow {
  return {
    id: `worker-host-${i}-${1000 + i}-a1b2c3`,
    host: `scan-node-${i}`,
    pid: 1000 + i,
    active: i % 3,
    concurrency: 4,
    scansDone: 100 * i,
    browserRestarts: i === 2 ? 3 : 0,
    rssBytes: (300 + i * 10) * 2 ** 20,
    startedAt: iso(3_600_000),
    heartbeatAgeMs: 2_000,
    stale: false,
    browserUp: true,
    ...over,
  };
}

export function dlqRow(i: number): DlqRow {
  return { id: `dlq_entry${String(i).padStart(5, '0')}`, host: `site-${i % 7}.example`, code: i % 2 ? 'HTTP_SERVER_ERROR' : 'NAVIGATION_TIMEOUT', url: `https://site-${i % 7}.example/page/${i}`, at: iso(60_000 * (i + 1)), status: 'dead', attempts: 3 };
}

/** A healthy fleet: 2 workers, every breaker closed, empty DLQ, no alert. */
export function healthySnapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    version: 1,
    seq: 42,
    at: iso(0),
    computeMs: 3.1,
    status: 'healthy',
    serviceVersion: '0.1.0',
    uptimeSeconds: 7_530,
    health: { status: 'healthy' },
    queue: { waiting: 12, active: 5, delayed: 1, failed: 3, completed: 1_234, paused: false, maxCapacity: 1_000, utilizationPercent: 1.7, state: 'healthy' },
    workers: [worker(1), worker(2)],
    throughput: {
      bucketSeconds: 10,
      buckets: Array.from({ length: 60 }, (_, i) => (i % 6) + 1),
      perMinute: [20, 21, 22, 23, 24, 25, 26, 27, 28, 29],
      lastMinute: 29,
      failedLastMinute: 0,
      p95Ms: 4_200,
      since: iso(3_600_000),
    },
    breakers: ['ai', 'apollo', 'hubspot', 'slack', 'pagerduty'].map(closed),
    dlq: { size: 0, oldest: null, lastHourAdded: 0, newest: [] },
    alerts: [],
    ...over,
  };
}

/** Apollo's breaker open on one of two processes; the snapshot's status degraded. */
export function breakerOpenSnapshot(): Snapshot {
  const s = healthySnapshot({ status: 'degraded' });
  s.breakers = s.breakers!.map((b) =>
    b.name === 'apollo'
      ? {
          name: 'apollo',
          state: 'OPEN',
          failures: 5,
          openedAt: iso(90_000),
          lastFailure: 'HTTP_SERVER_ERROR: apollo answered 503',
          processes: [
            { process: 'api-1', state: 'OPEN', failures: 5, openedAt: iso(90_000) },
            { process: 'worker-host-1-1001-a1b2c3', state: 'CLOSED', failures: 1, openedAt: null },
          ],
          uniform: false,
        }
      : b.name === 'hubspot'
        ? { ...b, state: 'ISOLATED', openedAt: iso(600_000), processes: [{ ...b.processes[0]!, state: 'ISOLATED' }] }
        : b,
  );
  s.alerts = [{ id: 'breaker_open', rule: 'BREAKER_OPEN', severity: 'critical', summary: 'circuit breaker apollo is OPEN', since: iso(85_000) }];
  return s;
}

/** A DLQ of `size` entries of which `shown` are in the snapshot. */
export function dlqSnapshot(size: number, shown = Math.min(size, 50)): Snapshot {
  return healthySnapshot({ dlq: { size, oldest: iso(86_400_000), lastHourAdded: Math.min(size, 60), newest: Array.from({ length: shown }, (_, i) => dlqRow(i)) } });
}

/** Writes `n` fake worker heartbeats (with breakers) into Redis, as live workers would. */
export async function writeHeartbeats(redis: RedisClient, keys: Keys, n: number, ttlMs = 15_000): Promise<string[]> {
  const ids: string[] = [];
  const multi = redis.multi();
  for (let i = 1; i <= n; i++) {
    const id = `fake-worker-${i}-${5000 + i}-abcdef`;
    ids.push(id);
    const hb = {
      concurrency: 4,
      active: i % 4,
      scansDone: i * 17,
      browserRestarts: i % 5 === 0 ? 1 : 0,
      browserPid: 9000 + i,
      breakers: Object.fromEntries(['ai', 'apollo', 'hubspot', 'slack', 'pagerduty'].map((name) => [name, { state: 'CLOSED', failures: 0, lastFailureAt: null, lastFailure: null, openedAt: null, halfOpenAfterMs: 30_000 }])),
      id,
      host: `fake-host-${i}`,
      pid: 5000 + i,
      memory: { rss: 400 * 2 ** 20, heapUsed: 100 * 2 ** 20 },
      startedAt: new Date(Date.now() - 600_000).toISOString(),
      at: new Date().toISOString(),
    };
    multi.set(keys.worker(id), JSON.stringify(hb), 'PX', ttlMs).sadd(keys.workers, id);
  }
  await multi.exec();
  return ids;
}

/** Writes `n` DLQ entries through the DLQ store, as capture would. */
export async function seedDlq(redis: RedisClient, keys: Keys, n: number, url = (i: number) => `http://127.0.0.1:9/seeded/${i}`): Promise<DlqEntry[]> {
  const store = new DlqStore(redis, keys);
  const entries: DlqEntry[] = [];
  const base = Date.now() - n * 1_000;
  for (let i = 0; i < n; i++) {
    const at = new Date(base + i * 1_000).toISOString();
    const jobId = `scan_seed${i}_${Math.random().toString(36).slice(2, 8)}`;
    const u = url(i);
    const code = i % 3 === 0 ? 'NAVIGATION_TIMEOUT' : 'HTTP_SERVER_ERROR';
    const entry: DlqEntry = {
      id: `dlq_${jobId}`,
      jobId,
      request: { url: u, options: { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false }, priority: 'normal' },
      host: new URL(u).host,
      code,
      message: `${u} failed`,
      retryable: true,
      attemptsMade: 3,
      attempts: [{ attempt: 3, jobId, code, message: `${u} failed`, at }],
      firstFailedAt: at,
      lastFailedAt: at,
      retries: [],
      status: 'dead',
    };
    const out = await store.write(entry.id, entry, '', jobId);
    if (out.status !== 'ok') throw new Error(`seeding ${entry.id}: ${out.status}`);
    entries.push(entry);
  }
  return entries;
}
