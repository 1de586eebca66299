/**
 * The scan API over the queue's bookkeeping: what `Prefer: wait`, `GET /api/scans/:id`, dedup and
 * priorities answer while a scan is held at a chosen step. Real Redis (a redis-server child), the
 * real API, and BullMQ workers in this process with stub scanners: the point is the queue, not the page.
 */
import { connect } from 'node:net';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { keysFor } from '../../src/queue/keys.js';
import { waitReady, workerConnection } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { startScanWorker } from '../../src/queue/worker.js';
import type { Scanner } from '../../src/scanner/types.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { jobCounts, LogSink, startTestService, totalJobs, waitFor, type TestService } from '../support/service.js';
import { heldScanner, stubResult, stubScanner } from '../support/stub-results.js';

// Nothing is ever fetched (the scanners are stubs), so the targets need not exist.
const target = (n: string) => `http://127.0.0.1:9/${n}.html`;

let redis: RedisServer;
const closers: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await redis?.close();
});

async function api(settings: Record<string, string> = {}): Promise<TestService> {
  const svc = await startTestService({ redisUrl: redis.url, settings });
  closers.push(() => svc.close());
  return svc;
}


/** A worker of `svc`'s queue in this process: one scan at a time, on `scanner`. */
async function worker(svc: TestService, scanner: Scanner, extra: Partial<Parameters<typeof startScanWorker>[0]> = {}): Promise<void> {
  const conn = workerConnection(redis.url);
  await waitReady(conn, 10_000);
  const keys = keysFor(svc.prefix);
  const w = startScanWorker({
    connection: conn,
    keys,
    scanner,
    store: new ResultStore(conn, keys, 60_000, 60_000),
    logger: createLogger({ level: 'info', destination: new LogSink() }),
    concurrency: 1,
    scanTimeoutMs: 5_000,
    ...extra,
  });
  closers.push(async () => {
    await w.close(1_000);
    conn.disconnect();
  });
}

describe('Prefer: wait', () => {
  it('answers 200 with the body GET has for a scan whose record is stored by the deadline, its job still finishing', async () => {
    const svc = await api();
    const scanner = heldScanner();
    // The CRM sync runs once the record is stored; BullMQ completes the job (and tells the waiters) only after it.
    let syncDone!: () => void;
    const sync = new Promise<void>((resolve) => (syncDone = resolve));
    closers.push(async () => syncDone());
    await worker(svc, scanner, { hooks: { afterStore: async () => (await sync, null) } });

    const url = target('wait-deadline');
    const answer = svc.post('/api/scans', { url }, { prefer: 'wait=1' });
    // The request is waiting (it logs the submission, then checks the scan once): only now does the scan finish.
    const queued = await waitFor(() => svc.logs.events('scan.queued', (e) => e.url === url)[0], { what: 'the submission' });
    await waitFor(() => scanner.held() === 1, { what: 'the scan to start' });
    scanner.answer((u) => stubResult(u));

    const res = await answer;
    const get = await svc.get(`/api/scans/${queued.jobId}`);
    expect(get.json.status).toBe('completed');
    expect(res.status, res.body).toBe(200);
    expect(res.headers['preference-applied']).toBe('wait=1');
    expect(res.json).toEqual(get.json);
    syncDone();
  });

  it('stops waiting at once for a client that hung up while its scan was being submitted', async () => {
    // No rate limit: the only Redis call before the submission is none, so the pause below holds the submission itself.
    const svc = await api({ RATE_LIMIT_MAX: '0' });
    const address = await svc.service.app!.listen({ port: 0, host: '127.0.0.1' });
    const admin = new Redis(redis.url);
    closers.push(async () => admin.disconnect());
    const url = target('hang-up-early');
    const body = JSON.stringify({ url });

    // Writes (the admission script among them) wait for a second: the client hangs up meanwhile.
    await admin.client('PAUSE', 1_000, 'WRITE');
    const socket = connect(Number(new URL(address).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /api/scans HTTP/1.1\r\nhost: wcagai\r\ncontent-type: application/json\r\nprefer: wait=60\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await waitFor(() => svc.logs.entries.find((e) => (e.req as { url?: string } | undefined)?.url === '/api/scans'), { what: 'the request to arrive' });
    socket.destroy();

    const queued = await waitFor(() => svc.logs.events('scan.queued', (e) => e.url === url)[0], { what: 'the submission' });
    // Abandoned as soon as the submission is done, not when wait=60 runs out (the test's own timeout is 60 s).
    await waitFor(() => svc.logs.events('scan.wait_abandoned', (e) => e.jobId === queued.jobId)[0], { what: 'the wait to be abandoned', timeoutMs: 20_000 });
    // The scan itself goes on.
    expect((await svc.get(`/api/scans/${queued.jobId}`)).json.status).toBe('queued');
  });

  /** A service whose worker holds the scan of `url` while it runs: submitted (202, queued), then started. */
  async function runningScan(name: string) {
    const svc = await api();
    const scanner = heldScanner();
    await worker(svc, scanner);
    // Closers run last first: a scan still held (the test failed) is answered before its worker closes.
    closers.push(async () => scanner.answer((u) => stubResult(u)));
    const url = target(name);
    const first = await svc.post('/api/scans', { url });
    expect(first.status, first.body).toBe(202);
    expect(first.json.status).toBe('queued');
    await waitFor(() => scanner.held() === 1, { what: 'the scan to start' });
    return { svc, scanner, url, first };
  }

  it('answers the deadline 202 with the status the scan has then: active while it runs, with Location and links', async () => {
    // Queued first, so the scan is running before the waiting request is made.
    const { svc, scanner, url, first } = await runningScan('wait-active');

    const res = await svc.post('/api/scans', { url }, { prefer: 'wait=1' });
    const self = `/api/scans/${first.json.id}`;
    expect(res.status, res.body).toBe(202);
    expect(res.headers.location).toBe(self);
    expect(res.headers['preference-applied']).toBe('wait=1');
    expect(res.json).toEqual({ id: first.json.id, status: 'active', deduplicated: true, links: { self, report: `${self}/report` } });
    expect((await svc.get(self)).json.status).toBe('active');
    scanner.answer((u) => stubResult(u));
  });

  it('answers a plain request that joins a running scan with its status, active, not queued', async () => {
    const { svc, scanner, url, first } = await runningScan('join-active');

    const joined = await svc.post('/api/scans', { url });
    const self = `/api/scans/${first.json.id}`;
    expect(joined.status, joined.body).toBe(202);
    expect(joined.headers.location).toBe(self);
    expect(joined.json).toEqual({ id: first.json.id, status: 'active', deduplicated: true, links: { self, report: `${self}/report` } });
    scanner.answer((u) => stubResult(u));
    await waitFor(async () => (await svc.get(self)).json.status === 'completed', { what: 'the scan to complete' });
  });
});

describe('GET /api/scans/:id', () => {
  it('counts the attempt that is running: active on attempt N shows attempts N, as its final record will', async () => {
    const svc = await api({ SCAN_ATTEMPTS: '3', SCAN_BACKOFF: '100ms' });
    const scanner = heldScanner();
    await worker(svc, scanner);
    const res = await svc.post('/api/scans', { url: target('attempts') });
    expect(res.status, res.body).toBe(202);
    const id = res.json.id as string;
    const view = async () => (await svc.get(`/api/scans/${id}`)).json;

    await waitFor(() => scanner.held() === 1, { what: 'the first attempt' });
    expect(await view()).toMatchObject({ status: 'active', attempts: 1, finishedAt: null });

    scanner.answer((u) => stubResult(u, { httpStatus: 503, error: { code: 'HTTP_SERVER_ERROR', message: 'HTTP 503', retryable: true } }));
    await waitFor(() => scanner.calls.length === 2 && scanner.held() === 1, { what: 'the second attempt' });
    expect(await view()).toMatchObject({ status: 'active', attempts: 2, finishedAt: null });

    scanner.answer((u) => stubResult(u));
    const final = await svc.finished(id);
    expect(final).toMatchObject({ status: 'completed', attempts: 2 });
    expect(final.startedAt).not.toBeNull();
    expect(final.finishedAt).not.toBeNull();
  });

  it('shows a scan queued again for a retry without the start of its previous attempt; a running retry shows its own', async () => {
    // Long enough a backoff to read the scan while it waits for its retry.
    const svc = await api({ SCAN_ATTEMPTS: '2', SCAN_BACKOFF: '2s' });
    const scanner = heldScanner();
    await worker(svc, scanner);
    closers.push(async () => scanner.answer((u) => stubResult(u)));
    const res = await svc.post('/api/scans', { url: target('retry-started') });
    expect(res.status, res.body).toBe(202);
    const id = res.json.id as string;
    const view = async () => (await svc.get(`/api/scans/${id}`)).json;

    await waitFor(() => scanner.held() === 1, { what: 'the first attempt' });
    const first = await view();
    expect(first).toMatchObject({ status: 'active', attempts: 1, finishedAt: null });
    expect(first.startedAt).not.toBeNull();

    scanner.answer((u) => stubResult(u, { httpStatus: 503, error: { code: 'HTTP_SERVER_ERROR', message: 'HTTP 503', retryable: true } }));
    const waiting = await waitFor(async () => {
      const v = await view();
      return v.status === 'queued' && v.attempts === 1 ? v : undefined;
    }, { what: 'the scan to wait for its retry' });
    expect(waiting).toMatchObject({ status: 'queued', attempts: 1, startedAt: null, finishedAt: null });

    await waitFor(() => scanner.held() === 1 && scanner.calls.length === 2, { what: 'the second attempt' });
    const second = await view();
    expect(second).toMatchObject({ status: 'active', attempts: 2, finishedAt: null });
    expect(Date.parse(second.startedAt)).toBeGreaterThan(Date.parse(first.startedAt));
    scanner.answer((u) => stubResult(u));
    const final = await svc.finished(id);
    expect(final).toMatchObject({ status: 'completed', attempts: 2 });
  });

  it('gives a scan that failed without a final record the code its failure carries (STALLED, or the CODE: of its reason)', async () => {
    const svc = await api({ SCAN_ATTEMPTS: '1' });
    const { keys } = svc.service;
    // A bare BullMQ worker stores no record, as a worker that died storing it or the stall check would leave it.
    const reasons = ['job stalled more than allowable limit', 'HTTP_CLIENT_ERROR: https://example.test/ answered 404'];
    const connection = workerConnection(redis.url);
    closers.push(async () => connection.disconnect());
    let n = 0;
    const bare = new Worker(keys.queueName, async () => {
      throw new Error(reasons[n++]);
    }, { connection, prefix: keys.bullPrefix, concurrency: 1 });
    closers.push(() => bare.close());
    const views = [];
    for (const name of ['stalled', 'gone']) {
      const res = await svc.post('/api/scans', { url: target(name) });
      expect(res.status, res.body).toBe(202);
      views.push(await svc.finished(res.json.id as string));
    }
    expect(views[0]).toMatchObject({ status: 'failed', error: { code: 'STALLED', retryable: true } });
    expect(views[1]).toMatchObject({ status: 'failed', error: { code: 'HTTP_CLIENT_ERROR', message: 'https://example.test/ answered 404', retryable: false } });
  });
});

describe('cache and in-flight dedup', () => {
  it('treats rule ids and selectors as sets: another order, a repeat or an empty list is the same request', async () => {
    const svc = await api();
    const url = target('same-options');
    const first = await svc.post('/api/scans', { url, rules: ['image-alt', 'label'], include: ['main', '#app'] });
    expect(first.status, first.body).toBe(202);
    const same = [
      { rules: ['label', 'image-alt'], include: ['#app', 'main'] },
      { rules: ['label', 'image-alt', 'label'], include: ['main', '#app', 'main'], exclude: [] },
      { rules: ['image-alt', 'label'], include: ['main', '#app'], disableRules: [] },
    ];
    for (const options of same) {
      const res = await svc.post('/api/scans', { url, ...options });
      expect(res.status, res.body).toBe(202);
      expect(res.json).toMatchObject({ id: first.json.id, deduplicated: true });
    }
    // An empty rule list selects by WCAG level, as no list does.
    const plain = await svc.post('/api/scans', { url: target('no-rules') });
    expect((await svc.post('/api/scans', { url: target('no-rules'), rules: [] })).json).toMatchObject({ id: plain.json.id, deduplicated: true });

    // Other rules are another request.
    const other = await svc.post('/api/scans', { url, rules: ['image-alt'], include: ['main', '#app'] });
    expect(other.status).toBe(202);
    expect(other.json.id).not.toBe(first.json.id);
    expect(await totalJobs(svc.service)).toBe(3);
  });
});

describe('priorities', () => {
  it('a high-priority request joining a low-priority job in the queue lifts it ahead, single or batched', async () => {
    const svc = await api();
    const low = await svc.post('/api/batches', { urls: ['low-1', 'low-2', 'low-3'].map(target), priority: 'low' });
    expect(low.status, low.body).toBe(202);
    expect((await svc.post('/api/scans', { url: target('normal') })).status).toBe(202);
    // Joins the queued low-priority scan of low-3 rather than queueing the page twice.
    const high = await svc.post('/api/scans', { url: target('low-3'), priority: 'high' });
    expect(high.json.deduplicated).toBe(true);
    // A high-priority batch naming low-2 lifts it too.
    expect((await svc.post('/api/batches', { urls: [target('low-2')], priority: 'high' })).status).toBe(202);
    expect(await totalJobs(svc.service)).toBe(4);

    const scanner = heldScanner();
    await worker(svc, scanner);
    for (let n = 1; n <= 4; n++) {
      await waitFor(() => scanner.held() === 1 && scanner.calls.length === n, { what: `scan ${n}` });
      scanner.answer((u) => stubResult(u));
    }
    expect(scanner.calls).toEqual([target('low-3'), target('low-2'), target('normal'), target('low-1')]);
  });
});

// A scan's record is kept RESULT_TTL: past it the scan is gone, even while BullMQ still keeps its completed job (an hour).
describe('a scan whose record outlived RESULT_TTL', () => {
  it('is gone (404, no report) while its completed job is still kept, never a completed scan with an empty report', async () => {
    const svc = await startTestService({ redisUrl: redis.url, settings: { RESULT_TTL: '2s', CACHE_TTL: '0' } });
    closers.push(() => svc.close());
    const conn = workerConnection(redis.url);
    await waitReady(conn, 10_000);
    const keys = keysFor(svc.prefix);
    // The worker's store keeps records as the service's RESULT_TTL says.
    const worker = startScanWorker({ connection: conn, keys, scanner: stubScanner(), store: new ResultStore(conn, keys, 2_000, 0), logger: createLogger({ level: 'info', destination: new LogSink() }), concurrency: 1, scanTimeoutMs: 5_000 });
    closers.push(async () => {
      await worker.close(1_000);
      conn.disconnect();
    });

    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/kept-briefly.html' });
    expect(res.status, res.body).toBe(202);
    const id = res.json.id as string;
    expect(await svc.finished(id)).toMatchObject({ status: 'completed', result: { status: 'ok' } });

    await waitFor(async () => (await svc.service.redis.exists(keys.result(id))) === 0, { what: 'the record to expire', timeoutMs: 10_000 });
    // BullMQ still holds the completed job (removeOnComplete: an hour).
    expect((await jobCounts(svc.service)).completed).toBe(1);
    const view = await svc.get(`/api/scans/${id}`);
    expect(view.status, view.body).toBe(404);
    expect(view.json.code).toBe('NOT_FOUND');
    const report = await svc.get(`/api/scans/${id}/report?format=junit`);
    expect(report.status, report.body).toBe(404);
  });
});
