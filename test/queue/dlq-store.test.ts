import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DlqEntry } from '../../src/domain/dlq.js';
import type { PageResult, ScanOptions } from '../../src/domain/scan.js';
import { createLogger } from '../../src/observability/logger.js';
import { DeadLetterQueue, type ReplaySubmit } from '../../src/queue/dlq.js';
import { DlqCapture } from '../../src/queue/dlq-capture.js';
import { startDlqRetention } from '../../src/queue/dlq-retention.js';
import { DlqStore } from '../../src/queue/dlq-store.js';
import { keysFor, type Keys } from '../../src/queue/keys.js';
import { producerConnection, waitReady, workerConnection } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { startScanWorker, type ScanWorker } from '../../src/queue/worker.js';
import type { Scanner } from '../../src/scanner/types.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { LogSink, startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';
import { stubResult, stubScanner } from '../support/stub-results.js';

/**
 * The DLQ's store, capture and retention without Chromium: scans are failed by a stub scanner
 * through the real processor and BullMQ worker, entries are seeded through the store's own
 * write path. Real Redis.
 */

const TOKEN = 'dlq-store-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const OPTIONS: ScanOptions = { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false };
const CODES = ['HTTP_SERVER_ERROR', 'HTTP_CLIENT_ERROR', 'NAVIGATION_TIMEOUT', 'DNS_FAILURE', 'STALLED'];

let redis: RedisServer;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await redis?.close();
});

async function apiService(prefix = uniquePrefix('dlq')): Promise<TestService> {
  const svc = await startTestService({ redisUrl: redis.url, prefix, settings: { ADMIN_TOKEN: TOKEN } });
  closers.push(() => svc.close());
  return svc;
}

/** A store on its own prefix and connection. */
async function storeFor(prefix = uniquePrefix('dlqs')): Promise<{ store: DlqStore; keys: Keys; dlq: DeadLetterQueue }> {
  const keys = keysFor(prefix);
  const conn = producerConnection(redis.url, { commandTimeout: 30_000 });
  closers.push(async () => conn.disconnect());
  await waitReady(conn);
  const store = new DlqStore(conn, keys);
  const dlq = new DeadLetterQueue({ store, submit: async () => ({ id: 'scan_unused' }), isLive: async () => false });
  return { store, keys, dlq };
}

/** Writes entries as capture would, in one round trip. */
async function seed(store: DlqStore, entries: readonly DlqEntry[]): Promise<void> {
  const pipeline = store.redis.pipeline();
  store.insertInto(pipeline, entries);
  await pipeline.exec();
}

/** Every id of the DLQ page by page; the last entry of page `removeAfter` (0-based) is removed once read. */
async function pageThrough(dlq: DeadLetterQueue, limit: number, removeAfter: number): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let pageNo = 0; pageNo < 50; pageNo++) {
    const page = await dlq.list({ limit, ...(cursor ? { cursor } : {}) });
    seen.push(...page.entries.map((e) => e.id));
    if (pageNo === removeAfter && page.entries.length) await dlq.remove(page.entries.at(-1)!.id);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  return seen;
}

let seq = 0;
/** An entry as capture would write it. */
function entry(fields: { code: string; host: string; at: number; url?: string }): DlqEntry {
  const n = ++seq;
  const at = new Date(fields.at).toISOString();
  const url = fields.url ?? `https://${fields.host}/page-${n}`;
  return {
    id: `dlq_seed${String(n).padStart(7, '0')}`,
    jobId: `scan_seed${n}`,
    request: { url, options: OPTIONS, priority: 'normal' },
    host: fields.host,
    code: fields.code,
    message: `${url} failed`,
    retryable: true,
    attemptsMade: 1,
    attempts: [{ attempt: 1, jobId: `scan_seed${n}`, code: fields.code, message: `${url} failed`, at }],
    firstFailedAt: at,
    lastFailedAt: at,
    retries: [],
    status: 'dead',
  };
}

/** Fails every scan: URLs containing "perm" permanently (404), the others retryably with a message per call. */
function failingScanner(): Scanner & { calls: number } {
  const scanner = {
    calls: 0,
    async scan(url: string): Promise<PageResult> {
      scanner.calls++;
      const permanent = url.includes('perm');
      return stubResult(url, {
        httpStatus: permanent ? 404 : 503,
        error: permanent ? { code: 'HTTP_CLIENT_ERROR', message: `${url} answered 404`, retryable: false } : { code: 'HTTP_SERVER_ERROR', message: `${url} answered 503 (call ${scanner.calls})`, retryable: true },
      });
    },
    stats: () => ({ concurrency: 4, active: 0, scansDone: scanner.calls, browserRestarts: 0, browserPid: 1 }),
    close: async () => undefined,
  };
  return scanner;
}

/** A replay submit that queues nothing and records the job id of each replay. */
const recordSubmits: (submitted: string[]) => ReplaySubmit = (submitted) => async (_url, _options, ctx) => {
  submitted.push(ctx.id!);
  return { id: ctx.id! };
};

describe('DLQ capture', () => {
  it('makes one entry per failed job however many captures observe it (two QueueEvents connections in one process)', async () => {
    const svc = await apiService();
    const { keys } = svc.service;
    const sink = new LogSink();
    const logger = createLogger({ level: 'info', destination: sink });
    const told: Array<{ jobId: string; writtenHere: boolean }> = [];
    const second = new DlqCapture({
      connection: workerConnection(redis.url),
      queue: svc.service.queue,
      keys,
      store: new DlqStore(svc.service.redis, keys),
      results: new ResultStore(svc.service.redis, keys, 60_000, 0),
      logger,
      onCapture: (e, { writtenHere }) => told.push({ jobId: e.jobId, writtenHere }),
    });
    await second.ready();
    closers.push(() => second.close());

    const urls = ['http://127.0.0.1:9/perm-1', 'http://127.0.0.1:9/perm-2', 'http://127.0.0.1:9/perm-3', 'http://127.0.0.1:9/retry-1', 'http://127.0.0.1:9/retry-2'];
    const ids: string[] = [];
    for (const url of urls) {
      const res = await svc.post('/api/scans', { url });
      expect(res.status, res.body).toBe(202);
      ids.push(res.json.id);
    }
    const workerConn = workerConnection(redis.url);
    const worker: ScanWorker = startScanWorker({ connection: workerConn, keys, scanner: failingScanner(), store: new ResultStore(workerConn, keys, 60_000, 0), logger, concurrency: 4, scanTimeoutMs: 5_000 });
    closers.push(async () => {
      await worker.close(2_000);
      workerConn.disconnect();
    });

    const entries = await waitFor(
      async () => {
        const res = await svc.get('/admin/dlq/jobs?limit=100', AUTH);
        return res.json.entries.length >= urls.length ? (res.json.entries as DlqEntry[]) : undefined;
      },
      { timeoutMs: 20_000, what: 'five DLQ entries' },
    );
    await new Promise((r) => setTimeout(r, 500));
    expect((await svc.get('/admin/dlq/stats', AUTH)).json.total).toBe(urls.length);
    expect(entries.map((e) => e.jobId).sort()).toEqual([...ids].sort());
    // Each capture was written once, by one of the two observers.
    const captured = [...svc.logs.events('dlq.captured'), ...sink.events('dlq.captured')];
    expect(captured.map((e) => e.jobId).sort()).toEqual([...ids].sort());
    // Its listener heard of every capture once, as written here only for those it wrote.
    expect(told.map((t) => t.jobId).sort()).toEqual([...ids].sort());
    expect(told.filter((t) => t.writtenHere).map((t) => t.jobId).sort()).toEqual(sink.events('dlq.captured').map((e) => e.jobId as string).sort());

    const retryable = entries.filter((e) => e.request.url.includes('retry'));
    for (const e of retryable) {
      expect(e).toMatchObject({ code: 'HTTP_SERVER_ERROR', attemptsMade: 3, retryable: true });
      // Every attempt kept its own error message.
      expect(new Set(e.attempts.map((a) => a.message)).size).toBe(3);
    }
    for (const e of entries.filter((x) => x.request.url.includes('perm'))) expect(e).toMatchObject({ code: 'HTTP_CLIENT_ERROR', attemptsMade: 1, retryable: false });
    // Capturing again (a late observer, the start-up sweep) changes nothing.
    expect(await second.capture(ids[0]!)).toEqual({ outcome: 'duplicate' });
    expect(await second.sweep(100)).toBe(0);

    // The API process's metrics: the DLQ's size, and each capture counted once by code.
    const metrics = (await svc.request({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^wcagai_dlq_size 5$/m);
    expect(metrics).toMatch(/^wcagai_dlq_captured_total\{code="HTTP_CLIENT_ERROR"\} 3$/m);
    expect(metrics).toMatch(/^wcagai_dlq_captured_total\{code="HTTP_SERVER_ERROR"\} 2$/m);

    // Two entries replayed or deleted since; their capture markers expired (8 days). The start-up
    // sweep must not bring back the one that failed 9 days ago (BullMQ keeps a failed job until
    // another job fails), and still takes the one that failed within its window.
    const failedKey = svc.service.queue.keys.failed!;
    const byJob = new Map(entries.map((e) => [e.jobId, e.id]));
    const [oldJob, recentJob] = [ids[0]!, ids[1]!];
    for (const jobId of [oldJob, recentJob]) {
      await svc.service.redis.del(keys.dlq.job(jobId));
      await new DlqStore(svc.service.redis, keys).remove([byJob.get(jobId)!]);
    }
    await svc.service.redis.zadd(failedKey, Date.now() - 9 * 86_400_000, oldJob);
    expect(await second.sweep(100)).toBe(1);
    const after = (await svc.get('/admin/dlq/jobs?limit=100', AUTH)).json.entries as DlqEntry[];
    expect(after.map((e) => e.jobId)).toContain(recentJob);
    expect(after.map((e) => e.jobId)).not.toContain(oldJob);

    // A process running all along catches a failure no event brought (its entry and marker gone
    // here, as if the stream had been trimmed past it) by sweeping again while it runs.
    const periodic = new DlqCapture({ connection: workerConnection(redis.url), queue: svc.service.queue, keys, store: new DlqStore(svc.service.redis, keys), results: new ResultStore(svc.service.redis, keys, 60_000, 0), logger, sweep: 200, sweepEveryMs: 200 });
    await periodic.ready();
    closers.push(() => periodic.close());
    const missed = ids[2]!;
    await svc.service.redis.del(keys.dlq.job(missed));
    await new DlqStore(svc.service.redis, keys).remove([byJob.get(missed)!]);
    await waitFor(async () => ((await new DlqStore(svc.service.redis, keys).capturedAs(missed)) ? true : undefined), { timeoutMs: 10_000, what: 'the periodic sweep to capture the missed failure' });
    expect(sink.events('dlq.sweep.captured')).toEqual([expect.objectContaining({ captured: 1 })]);
  });
});

describe('DLQ capture of a scan that had completed', () => {
  it('does not dead-letter a job failed after its result was stored (killed worker, stall limit): it is marked completed without a second scan', async () => {
    const svc = await apiService();
    const { keys } = svc.service;
    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/stored-then-stalled' });
    expect(res.status, res.body).toBe(202);
    const id = res.json.id as string;

    // What a worker killed between storing the result and completing the job leaves behind: the
    // completed record, then the job failed by the stall limit (taken and failed by hand here).
    const results = new ResultStore(svc.service.redis, keys, 60_000, 60_000);
    const stored = stubResult('http://127.0.0.1:9/stored-then-stalled');
    await results.putFinal({ id, status: 'completed', url: stored.url, options: OPTIONS, attempts: 1, createdAt: null, startedAt: null, finishedAt: new Date().toISOString(), cached: false, result: stored }, 'cache-key-unused');
    const manualConn = workerConnection(redis.url);
    const manual = new Worker(keys.queueName, null, { connection: manualConn, prefix: keys.bullPrefix, autorun: false });
    closers.push(async () => {
      await manual.close();
      manualConn.disconnect();
    });
    const job = await manual.getNextJob('manual-token');
    expect(job?.id).toBe(id);
    await job!.moveToFailed(new Error('job stalled more than allowable limit'), 'manual-token');
    await manual.close();

    // Capture hands it back; a worker finds the stored result and completes the job without scanning.
    const scanner = failingScanner();
    const workerConn = workerConnection(redis.url);
    const worker = startScanWorker({ connection: workerConn, keys, scanner, store: new ResultStore(workerConn, keys, 60_000, 0), logger: createLogger({ level: 'fatal', destination: new LogSink() }), concurrency: 1, scanTimeoutMs: 5_000 });
    closers.push(async () => {
      await worker.close(2_000);
      workerConn.disconnect();
    });
    await waitFor(async () => (await svc.service.queue.getJobState(id)) === 'completed', { timeoutMs: 20_000, what: 'the job marked completed' });
    expect(scanner.calls).toBe(0);
    expect((await svc.get(`/api/scans/${id}`)).json).toMatchObject({ id, status: 'completed' });
    expect((await svc.get('/admin/dlq/jobs?limit=10', AUTH)).json.entries).toEqual([]);
  });
});

describe('DLQ replay whose entry update failed', () => {
  it('does not leave the entry retrying once its replay completed: the list and the entry say it left', async () => {
    const svc = await apiService();
    const { keys } = svc.service;
    const store = new DlqStore(svc.service.redis, keys);
    const dead = entry({ code: 'HTTP_SERVER_ERROR', host: '127.0.0.1:9', at: Date.now() - 60_000, url: 'http://127.0.0.1:9/fixed-now' });
    await seed(store, [dead]);
    const retried = await svc.post(`/admin/dlq/retry/${dead.id}`, {}, AUTH);
    expect(retried.status, retried.body).toBe(202);
    const jobId = retried.json.jobId as string;

    // The replay scans fine; the update that should remove its entry fails (Redis cut off then).
    const scanner = stubScanner();
    let resolveCalls = 0;
    const workerConn = workerConnection(redis.url);
    const worker = startScanWorker({
      connection: workerConn,
      keys,
      scanner,
      store: new ResultStore(workerConn, keys, 60_000, 0),
      logger: createLogger({ level: 'fatal', destination: new LogSink() }),
      concurrency: 1,
      scanTimeoutMs: 5_000,
      onReplayCompleted: async () => {
        resolveCalls++;
        throw new Error('Connection is closed.');
      },
    });
    closers.push(async () => {
      await worker.close(2_000);
      workerConn.disconnect();
    });
    await waitFor(async () => (await svc.service.queue.getJobState(jobId)) === 'completed', { timeoutMs: 20_000, what: 'the replay to complete' });
    expect(resolveCalls).toBe(1);
    expect((await svc.get(`/api/scans/${jobId}`)).json).toMatchObject({ status: 'completed' });
    expect((await svc.get('/admin/dlq/jobs?limit=10', AUTH)).json.entries).toEqual([]);
    const one = await svc.get(`/admin/dlq/jobs/${dead.id}`, AUTH);
    expect(one.status).toBe(404);
    expect((await svc.get('/admin/dlq/stats', AUTH)).json.total).toBe(0);
  });
});

describe('DLQ store', () => {
  it('groups stats by code, host and day from its counters, and keeps them right through updates and deletes', async () => {
    const { store, dlq } = await storeFor();
    const day = (d: number, h = 12) => Date.UTC(2026, 0, d, h);
    const seeded = [
      entry({ code: 'HTTP_SERVER_ERROR', host: 'a.example', at: day(1) }),
      entry({ code: 'HTTP_SERVER_ERROR', host: 'a.example', at: day(2) }),
      entry({ code: 'HTTP_SERVER_ERROR', host: 'b.example', at: day(2, 13) }),
      entry({ code: 'DNS_FAILURE', host: 'c.example', at: day(3) }),
      entry({ code: 'HTTP_CLIENT_ERROR', host: 'a.example', at: day(3, 14) }),
    ];
    for (const e of seeded) expect(await store.write(e.id, e, '', e.jobId)).toMatchObject({ status: 'ok' });
    expect(await dlq.stats()).toEqual({
      total: 5,
      byCode: { HTTP_SERVER_ERROR: 3, DNS_FAILURE: 1, HTTP_CLIENT_ERROR: 1 },
      byHost: { 'a.example': 3, 'b.example': 1, 'c.example': 1 },
      byDay: { '2026-01-01': 1, '2026-01-02': 2, '2026-01-03': 2 },
      oldest: new Date(day(1)).toISOString(),
      newest: new Date(day(3, 14)).toISOString(),
    });
    // A second write for the same job is refused: capture is idempotent.
    const again = entry({ code: 'HTTP_SERVER_ERROR', host: 'a.example', at: day(4) });
    expect(await store.write(again.id, again, '', seeded[0]!.jobId)).toEqual({ status: 'dup', existing: seeded[0]!.id });

    // Filters and order.
    expect((await dlq.list({ code: 'HTTP_SERVER_ERROR' })).entries.map((e) => e.id)).toEqual([seeded[2]!.id, seeded[1]!.id, seeded[0]!.id]);
    expect((await dlq.list({ host: 'a.example' })).entries.map((e) => e.id)).toEqual([seeded[4]!.id, seeded[1]!.id, seeded[0]!.id]);
    expect((await dlq.list({ code: 'HTTP_SERVER_ERROR', host: 'a.example' })).entries.map((e) => e.id)).toEqual([seeded[1]!.id, seeded[0]!.id]);

    // An entry failing again with another code on another day moves between counters.
    await store.update(seeded[0]!.id, (e) => ({ ...e, code: 'NAVIGATION_TIMEOUT', lastFailedAt: new Date(day(5)).toISOString() }));
    await dlq.remove(seeded[3]!.id);
    await expect(dlq.remove(seeded[3]!.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await dlq.stats()).toEqual({
      total: 4,
      byCode: { HTTP_SERVER_ERROR: 2, HTTP_CLIENT_ERROR: 1, NAVIGATION_TIMEOUT: 1 },
      byHost: { 'a.example': 3, 'b.example': 1 },
      byDay: { '2026-01-02': 2, '2026-01-03': 1, '2026-01-05': 1 },
      oldest: new Date(day(2)).toISOString(),
      newest: new Date(day(5)).toISOString(),
    });
    expect((await dlq.list({})).entries[0]!.id).toBe(seeded[0]!.id);
  });

  it('pages newest first with a cursor, through ties and entries leaving between pages', async () => {
    const { store, dlq } = await storeFor();
    const at = Date.UTC(2026, 1, 1);
    // 25 entries, in groups of five with the same failure time.
    const seeded = Array.from({ length: 25 }, (_, i) => entry({ code: 'HTTP_SERVER_ERROR', host: 'p.example', at: at + Math.floor(i / 5) * 1000 }));
    await seed(store, seeded);
    // The last entry of the second page leaves before the next page is read: paging carries on after it.
    const seen = await pageThrough(dlq, 7, 1);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    const times = seen.map((id) => seeded.find((e) => e.id === id)!.lastFailedAt);
    expect(times).toEqual([...times].sort().reverse());
  });

  it("shows no entry twice when more tie-mates than a page holds were shown before the cursor's entry left", async () => {
    const { store, dlq } = await storeFor();
    // 30 entries failed in one millisecond (a bulk failure), read 5 at a time.
    const seeded = Array.from({ length: 30 }, () => entry({ code: 'DNS_FAILURE', host: 't.example', at: Date.UTC(2026, 1, 2) }));
    await seed(store, seeded);
    const seen = await pageThrough(dlq, 5, 2);
    expect(new Set(seen).size).toBe(30);
    expect(seen).toHaveLength(30);
  });

  it('finds a host however it is spelled (case, default port)', async () => {
    const { store, dlq } = await storeFor();
    const seeded = [entry({ code: 'DNS_FAILURE', host: 'shop.example', at: Date.UTC(2026, 1, 3) })];
    await seed(store, seeded);
    for (const host of ['shop.example', 'Shop.Example', 'SHOP.example:443', 'shop.example:80']) expect((await dlq.list({ limit: 5, host })).entries.map((e) => e.id), host).toEqual([seeded[0]!.id]);
    expect((await dlq.list({ limit: 5, host: 'shop.example:8443' })).entries).toEqual([]);
  });

  it('refuses a cursor it never gave out (400 naming the field) instead of starting again at the newest entry', async () => {
    const { dlq } = await storeFor();
    await expect(dlq.list({ limit: 5, cursor: 'garbage' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    const svc = await apiService();
    const res = await svc.get('/admin/dlq/jobs?cursor=garbage', AUTH);
    expect(res.status, res.body).toBe(400);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'cursor' }] });
  });

  it('never hides older matches of a code + host filter behind a null cursor when the walk is cut short', async () => {
    const { store, dlq } = await storeFor();
    const at = Date.UTC(2026, 2, 1);
    // 2,000 newer entries of the code on another host, then two of the host at the bottom of the
    // code's index: further down than one page's bounded walk (limit × 50 + 1,000 entries) reaches.
    const wanted = [entry({ code: 'DNS_FAILURE', host: 'rare.example', at }), entry({ code: 'DNS_FAILURE', host: 'rare.example', at: at + 1 })];
    const others = Array.from({ length: 2_000 }, (_, i) => entry({ code: 'DNS_FAILURE', host: 'busy.example', at: at + 10_000 + i }));
    await seed(store, [...wanted, ...others]);

    const first = await dlq.list({ limit: 5, code: 'DNS_FAILURE', host: 'rare.example' });
    expect(first.entries).toEqual([]);
    expect(first.nextCursor, 'a short page must say that older entries remain').not.toBeNull();
    const seen: string[] = [];
    let cursor = first.nextCursor;
    for (let pageNo = 0; cursor && pageNo < 5; pageNo++) {
      const page = await dlq.list({ limit: 5, code: 'DNS_FAILURE', host: 'rare.example', cursor });
      seen.push(...page.entries.map((e) => e.id));
      cursor = page.nextCursor;
    }
    expect(cursor).toBeNull();
    expect(seen).toEqual([wanted[1]!.id, wanted[0]!.id]);
  });

  it('purges by age, updating every counter', async () => {
    const { dlq, store } = await storeFor();
    const now = Date.now();
    const old = Array.from({ length: 1_200 }, (_, i) => entry({ code: CODES[i % 2]!, host: `old${i % 3}.example`, at: now - 40 * 86_400_000 - i * 1000 }));
    // The oldest 600 are being retried: their replays are running, and a replay that fails comes
    // back to its entry. More than one purge batch (500) of them, at the front of the range.
    const retrying = Array.from({ length: 600 }, (_, i) => ({ ...entry({ code: 'DNS_FAILURE', host: 'busy.example', at: now - 50 * 86_400_000 - i * 1000 }), status: 'retrying' as const, retries: [{ at: new Date(now).toISOString(), jobId: `scan_replay${i}`, outcome: 'pending' as const }] }));
    const recent = Array.from({ length: 3 }, () => entry({ code: 'HTTP_SERVER_ERROR', host: 'new.example', at: now - 60_000 }));
    await seed(store, [...old, ...retrying, ...recent]);
    expect((await dlq.stats()).total).toBe(1_803);
    expect(await dlq.purge({ olderThanMs: 30 * 86_400_000 })).toEqual({ removed: 1_200 });
    const stats = await dlq.stats();
    expect(stats).toMatchObject({ total: 603, byCode: { HTTP_SERVER_ERROR: 3, DNS_FAILURE: 600 }, byHost: { 'new.example': 3, 'busy.example': 600 } });
    expect(await dlq.purge({ olderThanMs: 30 * 86_400_000 })).toEqual({ removed: 0 });
  });

  it('removes entries past DLQ_RETENTION through the BullMQ job scheduler', async () => {
    const prefix = uniquePrefix('dlqr');
    const { store, keys, dlq } = await storeFor(prefix);
    const now = Date.now();
    const old = entry({ code: 'HTTP_SERVER_ERROR', host: 'r.example', at: now - 2 * 3_600_000 });
    const fresh = entry({ code: 'HTTP_SERVER_ERROR', host: 'r.example', at: now - 60_000 });
    for (const e of [old, fresh]) await store.write(e.id, e, '', e.jobId);
    const conn = producerConnection(redis.url);
    await waitReady(conn);
    const sink = new LogSink();
    const retention = await startDlqRetention({ connection: conn, workerConnection: workerConnection(redis.url), keys, dlq, retentionMs: 3_600_000, logger: createLogger({ level: 'info', destination: sink }) });
    closers.push(async () => {
      await retention.close();
      conn.disconnect();
    });
    await waitFor(async () => (await dlq.stats()).total === 1, { timeoutMs: 15_000, what: 'retention to remove the old entry' });
    expect((await dlq.list({})).entries.map((e) => e.id)).toEqual([fresh.id]);
    expect(sink.events('dlq.retention')).toHaveLength(1);
    const maintenance = new Queue(keys.maintenanceQueueName, { connection: conn, prefix: keys.bullPrefix });
    const scheduler = await maintenance.getJobScheduler('dlq-retention');
    expect(scheduler).toMatchObject({ every: 900_000 });
    await maintenance.close();
  });
});

describe('DLQ retry', () => {
  /** One dead entry, and a DLQ over it whose submit and liveness the test decides. */
  async function retryable(submit: (ctx: { id?: string }) => Promise<{ id: string }>, isLive: (jobId: string) => Promise<boolean>, now?: () => number) {
    const { store } = await storeFor();
    const seeded = entry({ code: 'HTTP_SERVER_ERROR', host: 'r.example', at: Date.now() - 60_000 });
    await seed(store, [seeded]);
    const dlq = new DeadLetterQueue({ store, submit: (_url, _options, ctx) => submit(ctx), isLive, ...(now ? { now } : {}) });
    return { store, dlq, id: seeded.id };
  }

  it('records the job id with the claim, and keeps the claim when the add did queue the job though its answer was lost', async () => {
    const queued = new Set<string>();
    const { dlq, id } = await retryable(
      async (ctx) => {
        queued.add(ctx.id!);
        throw new Error('Command timed out');
      },
      async (jobId) => queued.has(jobId),
    );
    const result = await dlq.retry(id);
    expect(queued.has(result.jobId)).toBe(true);
    const entry = await dlq.get(id);
    expect(entry).toMatchObject({ status: 'retrying', retries: [{ jobId: result.jobId, outcome: 'pending' }] });
    await expect(dlq.retry(id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(queued.size).toBe(1);
  });

  it('gives the claim back when nothing was queued, as REDIS_UNAVAILABLE', async () => {
    const { dlq, id } = await retryable(
      async () => {
        throw new Error('Stream isn\'t writeable');
      },
      async () => false,
    );
    await expect(dlq.retry(id)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    expect(await dlq.get(id)).toMatchObject({ status: 'dead', retries: [] });
  });

  it('lets a claim whose job never reached the queue be claimed again only after staleClaimMs, and never while its job runs', async () => {
    let clock = Date.now();
    const live = new Set<string>();
    const { dlq, store, id } = await retryable(
      async (ctx) => ({ id: ctx.id! }),
      async (jobId) => live.has(jobId),
      () => clock,
    );
    // A process claimed the entry and died before queueing its job.
    await store.update(id, (e) => ({ ...e, status: 'retrying', retries: [{ at: new Date(clock).toISOString(), jobId: 'scan_never', outcome: 'pending' }] }));
    await expect(dlq.retry(id)).rejects.toMatchObject({ code: 'CONFLICT' });
    clock += 3 * 60_000;
    const again = await dlq.retry(id);
    expect(again.jobId).not.toBe('scan_never');
    // That replay is running: however old its claim gets, no second one.
    live.add(again.jobId);
    clock += 60 * 60_000;
    await expect(dlq.retry(id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await dlq.get(id)).retries).toMatchObject([{ jobId: 'scan_never', outcome: 'failed' }, { jobId: again.jobId, outcome: 'pending' }]);
  });

  it('ends an entry whose replay completed though the update removing it failed: gone on the next read, never replayed again, and purged', async () => {
    let clock = Date.now();
    const completed = new Set<string>();
    const submitted: string[] = [];
    const { store } = await storeFor();
    const seeded = [60_000, 60_000, 40 * 86_400_000].map((age) => entry({ code: 'HTTP_SERVER_ERROR', host: 'done.example', at: clock - age }));
    await seed(store, seeded);
    const dlq = new DeadLetterQueue({
      store,
      submit: recordSubmits(submitted),
      // A completed replay is neither queued nor running.
      isLive: async () => false,
      isCompleted: async (jobId) => completed.has(jobId),
      now: () => clock,
    });
    const [read, replayed, purged] = seeded.map((e) => e.id) as [string, string, string];
    // Each replay completes, and the update that should have removed its entry never lands (Redis
    // did not answer the worker then): replayCompleted is not called.
    for (const id of [read, replayed, purged]) completed.add((await dlq.retry(id)).jobId);
    expect(submitted).toHaveLength(3);
    // The next read sees the completion: the entry leaves the DLQ instead of staying retrying.
    await expect(dlq.get(read)).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('completed') });
    // Purge and retention leave entries being retried, but not one whose replay completed (never read since).
    expect(await store.read(purged)).toMatchObject({ entry: { status: 'retrying' } });
    expect(await dlq.purge({ olderThanMs: 30 * 86_400_000 })).toEqual({ removed: 1 });
    expect(await store.read(purged)).toBeNull();
    // Past the stale-claim rule, a retry does not replay a completed request a second time.
    clock += 3 * 60_000;
    await expect(dlq.retry(replayed)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(submitted).toHaveLength(3);
    expect((await dlq.list({})).entries).toEqual([]);
    expect((await dlq.stats()).total).toBe(0);
  });

  it('counts a retrying entry whose replay completed (its removal never landed) out of stats, size and summary without its being read, asking only about replays', async () => {
    let clock = Date.now();
    const completed = new Set<string>();
    const asked: string[] = [];
    const submitted: string[] = [];
    const { store } = await storeFor();
    const seeded = Array.from({ length: 20 }, (_, i) => entry({ code: i < 3 ? 'DNS_FAILURE' : 'HTTP_SERVER_ERROR', host: 'figures.example', at: clock - 60_000 - i }));
    await seed(store, seeded);
    const dlq = new DeadLetterQueue({
      store,
      submit: recordSubmits(submitted),
      isLive: async (jobId) => !completed.has(jobId),
      isCompleted: async (jobId) => {
        asked.push(jobId);
        return completed.has(jobId);
      },
      now: () => clock,
    });
    const replayedIds = [seeded[0]!.id, seeded[1]!.id, seeded[5]!.id];
    const jobs: string[] = [];
    for (const id of replayedIds) jobs.push((await dlq.retry(id)).jobId);
    asked.length = 0;

    // The first replay completes; the worker's update removing its entry never lands, and nobody
    // lists or shows the entry. The size (metric, /health/detailed) no longer counts it.
    completed.add(jobs[0]!);
    expect(await dlq.size()).toBe(19);
    expect(await store.read(replayedIds[0]!)).toBeNull();
    // Only the three replays were asked about, never the 17 dead entries.
    expect([...new Set(asked)].sort()).toEqual([...jobs].sort());

    // The second completes: size and summary (read at every scrape, every second by the
    // dashboard) do not ask again about a replay checked less than settleEveryMs ago; stats asks
    // about every entry being retried, so it is exact.
    completed.add(jobs[1]!);
    asked.length = 0;
    expect((await dlq.summary()).size).toBe(19);
    expect(asked).toEqual([]);
    expect(await dlq.stats()).toMatchObject({ total: 18, byCode: { DNS_FAILURE: 1, HTTP_SERVER_ERROR: 17 }, byHost: { 'figures.example': 18 } });
    expect([...new Set(asked)].sort()).toEqual([jobs[1]!, jobs[2]!].sort());

    // The third completes; once settleEveryMs has passed, summary sees it too.
    completed.add(jobs[2]!);
    clock += 10_001;
    expect((await dlq.summary()).size).toBe(17);
    for (const id of replayedIds) expect(await store.read(id)).toBeNull();
    expect(submitted).toHaveLength(3);
  });

  it('finds entries already retrying in a DLQ written before the retrying index existed, and keeps the index to retrying entries', async () => {
    const completed = new Set<string>();
    const submitted: string[] = [];
    const { store, keys } = await storeFor();
    const seeded = Array.from({ length: 4 }, (_, i) => entry({ code: 'HTTP_SERVER_ERROR', host: 'older.example', at: Date.now() - 60_000 - i }));
    await seed(store, seeded);
    const options = { submit: recordSubmits(submitted), isLive: async (jobId: string) => !completed.has(jobId), isCompleted: async (jobId: string) => completed.has(jobId) };
    const before = new DeadLetterQueue({ store, ...options });
    const [done, running, failed] = [seeded[0]!.id, seeded[1]!.id, seeded[2]!.id];
    const jobs = new Map<string, string>();
    for (const id of [done, running, failed]) jobs.set(id, (await before.retry(id)).jobId);
    completed.add(jobs.get(done)!);
    // What a DLQ written before the index looks like: retrying entries, no index, no marker.
    const { retrying: index, retryingBuilt: built } = keys.dlq;
    expect((await store.redis.zrange(index, 0, -1)).sort()).toEqual([done, running, failed].sort());
    await store.redis.del(index, built);

    // A process started since finds them: the completed replay's entry leaves the figures.
    const after = new DeadLetterQueue({ store: new DlqStore(store.redis, keys), ...options });
    expect(await after.size()).toBe(3);
    expect(await store.redis.get(built)).not.toBeNull();
    expect((await store.redis.zrange(index, 0, -1)).sort()).toEqual([running, failed].sort());
    // A replay that failed (back to dead) and a deleted entry leave the index with their write.
    await store.update(failed, (e) => ({ ...e, status: 'dead', retries: e.retries.map((r) => ({ ...r, outcome: 'failed' as const })) }));
    expect(await store.redis.zrange(index, 0, -1)).toEqual([running]);
    await after.remove(running);
    expect(await store.redis.zcard(index)).toBe(0);
    expect(await after.stats()).toMatchObject({ total: 2 });
  });

  it('does not replay a stale claim again when its replay completes while the retry is being decided', async () => {
    let clock = Date.now();
    const submitted: string[] = [];
    const asked = new Map<string, number>();
    const { store } = await storeFor();
    const [seeded] = [entry({ code: 'HTTP_SERVER_ERROR', host: 'race.example', at: clock - 60_000 })];
    await seed(store, [seeded!]);
    const dlq = new DeadLetterQueue({
      store,
      submit: recordSubmits(submitted),
      isLive: async () => false,
      // Not completed when the entry is read, completed by the time the claim is judged.
      isCompleted: async (jobId) => {
        asked.set(jobId, (asked.get(jobId) ?? 0) + 1);
        return asked.get(jobId)! > 1;
      },
      now: () => clock,
    });
    await dlq.retry(seeded!.id);
    clock += 3 * 60_000;
    await expect(dlq.retry(seeded!.id)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(submitted).toHaveLength(1);
  });

  it('reports a bulk retry cut short by Redis as stoppedBy REDIS_UNAVAILABLE, with what it did', async () => {
    const keys = keysFor(uniquePrefix('dlqb'));
    const conn = producerConnection(redis.url, { commandTimeout: 30_000 });
    await waitReady(conn);
    const store = new DlqStore(conn, keys);
    const seeded = Array.from({ length: 6 }, (_, i) => entry({ code: 'DNS_FAILURE', host: 'b.example', at: Date.now() - 60_000 - i }));
    await seed(store, seeded);
    let submitted = 0;
    const dlq = new DeadLetterQueue({
      store,
      submit: async (_url, _options, ctx) => {
        // Redis goes away after the third replay is queued.
        if (++submitted === 3) conn.disconnect();
        return { id: ctx.id! };
      },
      isLive: async () => true,
      bulkConcurrency: 1,
    });
    const result = await dlq.retryMany({ code: 'DNS_FAILURE' });
    expect(result.matched).toBe(6);
    expect(result.stoppedBy).toBe('REDIS_UNAVAILABLE');
    expect(result.retried.length).toBe(3);
    expect(result.skipped.length).toBe(1);
  });
});

describe('DLQ at 100,000 entries', () => {
  it('answers stats and pages of the list from its indexes (timings printed, not asserted)', async () => {
    const svc = await apiService();
    const { store, dlq } = await storeFor(svc.prefix);
    const N = 100_000;
    const now = Date.now();
    let started = performance.now();
    for (let base = 0; base < N; base += 5_000) {
      const pipeline = store.redis.pipeline();
      const batch = Array.from({ length: 5_000 }, (_, j) => base + j).map((i) => entry({ code: CODES[i % CODES.length]!, host: `h${i % 40}.example`, at: now - (i % 30) * 86_400_000 - i }));
      store.insertInto(pipeline, batch);
      const replies = (await pipeline.exec()) ?? [];
      expect(replies.every(([err]) => err === null)).toBe(true);
    }
    const seedMs = performance.now() - started;

    started = performance.now();
    const stats = await dlq.stats();
    const statsMs = performance.now() - started;
    expect(stats.total).toBe(N);
    expect(Object.values(stats.byCode).reduce((a, b) => a + b, 0)).toBe(N);
    expect(Object.keys(stats.byHost)).toHaveLength(40);
    expect(Object.keys(stats.byDay).length).toBeGreaterThanOrEqual(30);

    started = performance.now();
    const first = await dlq.list({ limit: 50 });
    const listMs = performance.now() - started;
    expect(first.entries).toHaveLength(50);
    started = performance.now();
    const second = await dlq.list({ limit: 50, cursor: first.nextCursor! });
    const cursorMs = performance.now() - started;
    expect(second.entries[0]!.lastFailedAt <= first.entries[49]!.lastFailedAt).toBe(true);
    started = performance.now();
    const filtered = await dlq.list({ limit: 50, code: 'DNS_FAILURE', host: 'h3.example' });
    const filteredMs = performance.now() - started;
    expect(filtered.entries.length).toBe(50);
    expect(filtered.entries.every((e) => e.code === 'DNS_FAILURE' && e.host === 'h3.example')).toBe(true);

    const httpStats = await svc.get('/admin/dlq/stats', AUTH);
    const httpList = await svc.get('/admin/dlq/jobs?limit=50&code=STALLED', AUTH);
    const health = await svc.get('/health/detailed');
    expect(httpStats.json).toEqual(stats);
    expect(httpList.json.entries).toHaveLength(50);
    expect(health.json.dlq.size).toBe(N);

    started = performance.now();
    expect(await dlq.purge({ olderThanMs: 0 })).toEqual({ removed: N });
    const purgeMs = performance.now() - started;
    expect(await dlq.stats()).toMatchObject({ total: 0, byCode: {}, byHost: {}, byDay: {} });

    const timings = { seedMs, statsMs, listMs, cursorMs, filteredMs, httpStatsMs: httpStats.ms, httpListMs: httpList.ms, healthMs: health.ms, purgeMs };
    console.log(`DLQ at ${N} entries (ms): ${Object.entries(timings).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ')}`);
  });
});
