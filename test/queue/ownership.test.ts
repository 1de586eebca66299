/**
 * Who may write a scan's outcome: a worker that lost its job's lock stores nothing; a worker shut
 * down while its AI suggestions run hands the job back instead of storing it without them; and a
 * failure seen while the DLQ's fail-fast connection is down is still captured once it is back.
 * Real Redis (a redis-server child), BullMQ workers in this process with stub scanners: the point
 * is the queue's bookkeeping, not the page.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS, type PageResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/observability/logger.js';
import { DlqCapture } from '../../src/queue/dlq-capture.js';
import { DlqStore } from '../../src/queue/dlq-store.js';
import { cacheKeyOf, JOB_SCHEMA_VERSION, newScanId } from '../../src/queue/job.js';
import { keysFor, type Keys } from '../../src/queue/keys.js';
import { scanJobOptions } from '../../src/queue/producer.js';
import { producerConnection, waitReady, workerConnection, type RedisClient } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { startScanWorker, type ScanWorker } from '../../src/queue/worker.js';
import type { Scanner } from '../../src/scanner/types.js';
import { freePort } from '../support/net.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { LogSink, uniquePrefix, waitFor } from '../support/service.js';
import { heldScanner, stubResult, stubScanner } from '../support/stub-results.js';

let redis: RedisServer;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await redis?.close();
});

async function connection(kind: 'producer' | 'worker', url = redis.url): Promise<RedisClient> {
  const conn = kind === 'producer' ? producerConnection(url, { commandTimeout: 5_000 }) : workerConnection(url);
  closers.push(async () => conn.disconnect());
  await waitReady(conn, 10_000);
  return conn;
}

/** A queue on its own connection, to add jobs as the API does. */
async function queueFor(keys: Keys): Promise<Queue> {
  const queue = new Queue(keys.queueName, { connection: await connection('producer'), prefix: keys.bullPrefix });
  closers.push(() => queue.close());
  return queue;
}

async function addScan(queue: Queue, url: string, attempts = 1): Promise<string> {
  const id = newScanId();
  const options = { ...DEFAULT_SCAN_OPTIONS };
  await queue.add('scan', { v: JOB_SCHEMA_VERSION, url, options, cacheKey: cacheKeyOf(url, options) }, scanJobOptions(id, 'normal', { attempts, backoffMs: 100 }));
  return id;
}


function quickScanner(): Scanner & { calls: string[] } {
  const scanner = {
    calls: [] as string[],
    async scan(url: string): Promise<PageResult> {
      scanner.calls.push(url);
      return stubResult(url);
    },
    stats: () => ({ concurrency: 1, active: 0, scansDone: scanner.calls.length, browserRestarts: 0, browserPid: 1 }),
    close: async () => undefined,
  };
  return scanner;
}

async function worker(keys: Keys, scanner: Scanner, sink: LogSink, extra: Partial<Parameters<typeof startScanWorker>[0]> = {}): Promise<ScanWorker> {
  const conn = await connection('worker');
  const w = startScanWorker({
    connection: conn,
    keys,
    scanner,
    store: new ResultStore(conn, keys, 60_000, 60_000),
    logger: createLogger({ level: 'info', destination: sink }),
    concurrency: 1,
    scanTimeoutMs: 5_000,
    lockDurationMs: 2_000,
    stalledIntervalMs: 500,
    ...extra,
  });
  closers.push(() => w.close(1_000));
  return w;
}

describe('a worker that lost its job\'s lock', () => {
  it('stores nothing and leaves the job to the worker that has it now: one record, the new owner\'s', async () => {
    const keys = keysFor(uniquePrefix('own'));
    const queue = await queueFor(keys);
    const sinkA = new LogSink();
    const held = heldScanner();
    // A's final outcomes as counted fleet-wide (what the alerts' error rate reads).
    const outcomesA: string[] = [];
    await worker(keys, held, sinkA, { outcomes: { record: async (outcome) => void outcomesA.push(outcome) } });
    const url = 'http://127.0.0.1:9/lock-lost.html';
    const id = await addScan(queue, url);
    await waitFor(() => held.calls.length === 1, { what: 'worker A to start the scan' });

    // A is cut off from Redis for longer than its lock: its lock lapses, and the stall check hands
    // the job to B, which scans and completes it.
    const quick = quickScanner();
    await worker(keys, quick, new LogSink());
    const conn = await connection('producer');
    await conn.del(`${keys.job(id)}:lock`);
    await waitFor(async () => (await queue.getJobState(id)) === 'completed', { timeoutMs: 20_000, what: 'worker B to complete the job' });
    expect(quick.calls).toEqual([url]);
    const results = new ResultStore(conn, keys, 60_000, 60_000);
    const stored = await results.get(id);
    expect(stored).toMatchObject({ status: 'completed', result: { status: 'ok', httpStatus: 200 } });

    // A's scan ends late, as a permanent failure: it must not replace B's record.
    held.answer((u) => stubResult(u, { httpStatus: 404, error: { code: 'HTTP_CLIENT_ERROR', message: `${u} answered 404`, retryable: false } }));
    // A is done with the job once it has noticed, or (were it to store anyway) once it has counted its failure.
    await waitFor(() => sinkA.events('scan.lock_lost').length + outcomesA.length > 0, { what: 'worker A to finish with the job' });
    expect(await results.get(id)).toEqual(stored);
    expect(outcomesA).toEqual([]);
    expect(sinkA.events('scan.lock_lost')).toHaveLength(1);
    expect(await queue.getJobState(id)).toBe('completed');
    // The cache answers with B's completed scan.
    expect(await conn.get(keys.cache(cacheKeyOf(url, DEFAULT_SCAN_OPTIONS)))).toBe(id);
  });
});

describe('a worker shut down while a successful scan\'s AI suggestions are being fetched', () => {
  it('hands the job back with its attempt unspent instead of storing the scan without them', async () => {
    const keys = keysFor(uniquePrefix('own'));
    const queue = await queueFor(keys);
    const sink = new LogSink();
    let asked = 0;
    // Stands for the AI hook: answers only when aborted, with the scan marked degraded (as the real hook does).
    const w = await worker(keys, quickScanner(), sink, {
      lockDurationMs: 10_000,
      hooks: {
        beforeStore: (result, ctx) =>
          new Promise<PageResult>((resolve) => {
            asked++;
            ctx.signal?.addEventListener('abort', () => resolve({ ...result, degraded: ['ai'] }), { once: true });
          }),
      },
    });
    const id = await addScan(queue, 'http://127.0.0.1:9/ai-slow.html', 3);
    await waitFor(() => asked === 1, { what: 'the AI hook to be asked' });
    const closed = await w.close(300);
    expect(closed.released).toBe(true);
    expect(sink.events('scan.released')).toHaveLength(1);
    const conn = await connection('producer');
    expect(await new ResultStore(conn, keys, 60_000, 60_000).get(id)).toBeNull();
    const job = await queue.getJob(id);
    // Back among the jobs waiting to run (a job with a priority waits in BullMQ's prioritized set).
    expect(['waiting', 'prioritized']).toContain(await job!.getState());
    expect(job!.attemptsMade).toBe(0);
  });
});

/** A TCP relay to Redis that the test can cut (every connection dropped, new ones refused) and restore. */
async function cuttableRelay(target: number): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = createConnection({ host: '127.0.0.1', port: target });
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
  await listen();
  const relay = {
    url: `redis://127.0.0.1:${port}`,
    async cut() {
      const s = server;
      server = null;
      const closed = new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    restore: listen,
  };
  closers.push(() => relay.cut());
  return relay;
}

describe('DLQ capture while its fail-fast connection is down', () => {
  it('tries again until Redis answers: the failure seen on the event stream gets its entry', async () => {
    const keys = keysFor(uniquePrefix('own'));
    const relay = await cuttableRelay(redis.port);
    // Capture reads and writes through the relay (the API's fail-fast connection); its event stream does not.
    const failFast = producerConnection(relay.url, { commandTimeout: 2_000 });
    closers.push(async () => failFast.disconnect());
    await waitReady(failFast, 10_000);
    const sink = new LogSink();
    const captureQueue = new Queue(keys.queueName, { connection: failFast, prefix: keys.bullPrefix });
    closers.push(() => captureQueue.close());
    const capture = new DlqCapture({
      connection: workerConnection(redis.url),
      queue: captureQueue,
      keys,
      store: new DlqStore(failFast, keys),
      results: new ResultStore(failFast, keys, 60_000, 0),
      logger: createLogger({ level: 'info', destination: sink }),
    });
    await capture.ready();
    closers.push(() => capture.close());

    await relay.cut();
    const queue = await queueFor(keys);
    const id = await addScan(queue, 'http://127.0.0.1:9/perm-gone.html');
    const failing = stubScanner((url) => stubResult(url, { httpStatus: 404, error: { code: 'HTTP_CLIENT_ERROR', message: `${url} answered 404`, retryable: false } }));
    await worker(keys, failing, new LogSink());
    await waitFor(() => sink.events('dlq.capture.retry').length >= 1, { timeoutMs: 15_000, what: 'a capture that failed and will try again' });
    await relay.restore();

    const store = new DlqStore(await connection('producer'), keys);
    const dlqId = await waitFor(async () => (await store.capturedAs(id)) ?? undefined, { timeoutMs: 30_000, what: 'the DLQ entry' });
    expect((await store.read(dlqId))?.entry).toMatchObject({ jobId: id, code: 'HTTP_CLIENT_ERROR' });
    expect(sink.events('dlq.capture.failed')).toHaveLength(0);
  });
});
