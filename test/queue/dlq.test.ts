import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DlqEntry } from '../../src/domain/dlq.js';
import type { ScanJobData } from '../../src/queue/job.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, waitFor, type TestService } from '../support/service.js';

/**
 * The DLQ end to end: real Redis, real Chromium, pages on a loopback fixture server whose answers
 * the tests switch (500, 404, then 200 once "fixed"). One service (API + 2 workers) runs them in
 * order; each test names the entries it made by scan id, and later ones build on earlier ones.
 */

const TOKEN = 'dlq-test-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let redis: RedisServer;
let fixture: FixtureServer;
let svc: TestService;
const statusOf = new Map<string, number>();

/** A page answering with whatever status the test sets for its path. */
function switchable(path: string, status: number): string {
  statusOf.set(path, status);
  fixture.route(path, (_req, res) => {
    res.writeHead(statusOf.get(path) ?? 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page(`<h1>${path}</h1>`));
  });
  return fixture.url(path);
}

async function submit(url: string, requestId?: string): Promise<string> {
  const res = await svc.post('/api/scans', { url }, requestId ? { 'x-request-id': requestId } : {});
  expect(res.status, res.body).toBe(202);
  return res.json.id as string;
}

async function allEntries(query = ''): Promise<DlqEntry[]> {
  const res = await svc.get(`/admin/dlq/jobs?limit=1000${query}`, AUTH);
  expect(res.status, res.body).toBe(200);
  return res.json.entries as DlqEntry[];
}

/** The entry holding scan `jobId` (as the original job or a replay), once `ready` holds for it. */
function entryOf(jobId: string, ready: (e: DlqEntry) => boolean = () => true, timeoutMs = 30_000): Promise<DlqEntry> {
  return waitFor(async () => (await allEntries()).find((e) => (e.jobId === jobId || e.retries.some((r) => r.jobId === jobId)) && ready(e)), {
    timeoutMs,
    what: `the DLQ entry of ${jobId}`,
  });
}

async function entryGone(id: string): Promise<void> {
  await waitFor(async () => (await svc.get(`/admin/dlq/jobs/${id}`, AUTH)).status === 404, { timeoutMs: 30_000, what: `${id} to leave the DLQ` });
}

async function replaysOf(dlqId: string): Promise<string[]> {
  const jobs = await svc.service.queue.getJobs(['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed']);
  return jobs.filter((j) => (j.data as ScanJobData).dlqId === dlqId).map((j) => j.id!);
}

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  svc = await startTestService({ redisUrl: redis.url, worker: 2, settings: { ADMIN_TOKEN: TOKEN } });
});

afterAll(async () => {
  await svc?.close();
  await Promise.allSettled([redis?.close(), fixture?.close()]);
});

describe('dead-letter queue (SCAN_ATTEMPTS 3, SCAN_BACKOFF 100ms)', () => {
  let serverError: DlqEntry;
  let clientError: DlqEntry;
  let flaky: DlqEntry;

  it('captures a target that always answers 500 after exactly 3 attempts, each with its error', async () => {
    const url = switchable('/always-500', 500);
    const id = await submit(url, 'req-dlq-500');
    expect((await svc.finished(id)).status).toBe('failed');
    serverError = await entryOf(id);
    expect(serverError).toMatchObject({
      jobId: id,
      code: 'HTTP_SERVER_ERROR',
      retryable: true,
      attemptsMade: 3,
      status: 'dead',
      requestId: 'req-dlq-500',
      host: `127.0.0.1:${fixture.port}`,
      request: { url, priority: 'normal', options: { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false } },
      retries: [],
    });
    expect(serverError.id).toMatch(/^dlq_/);
    expect(serverError.attempts.map((a) => [a.attempt, a.code, a.jobId])).toEqual([1, 2, 3].map((n) => [n, 'HTTP_SERVER_ERROR', id]));
    expect(serverError.attempts.every((a) => /answered 500/.test(a.message))).toBe(true);
    expect(serverError.firstFailedAt <= serverError.lastFailedAt).toBe(true);
    expect(serverError.workerId).toMatch(/-\d+-[0-9a-f]{6}$/);
    expect(fixture.requestsTo('/always-500')).toHaveLength(3);
    // The detail route answers the same entry.
    expect((await svc.get(`/admin/dlq/jobs/${serverError.id}`, AUTH)).json).toEqual(serverError);
  });

  it('captures a permanent error (404) after one attempt', async () => {
    const url = switchable('/missing', 404);
    const id = await submit(url);
    const view = await svc.finished(id);
    expect(view).toMatchObject({ status: 'failed', error: { code: 'HTTP_CLIENT_ERROR' } });
    clientError = await entryOf(id);
    expect(clientError).toMatchObject({ code: 'HTTP_CLIENT_ERROR', retryable: false, attemptsMade: 1, status: 'dead' });
    expect(clientError.attempts).toHaveLength(1);
    expect(fixture.requestsTo('/missing')).toHaveLength(1);
  });

  it('replays an entry once its target is fixed: a new scan with the same request id completes and the entry leaves', async () => {
    statusOf.set('/always-500', 200);
    const res = await svc.request({ method: 'POST', url: `/admin/dlq/retry/${serverError.id}`, headers: AUTH });
    expect(res.status, res.body).toBe(202);
    expect(res.json).toMatchObject({ id: serverError.id, status: 'retrying', links: { scan: `/api/scans/${res.json.jobId}` } });
    const replay = res.json.jobId as string;
    expect(replay).not.toBe(serverError.jobId);
    const view = await svc.finished(replay);
    expect(view).toMatchObject({ status: 'completed', requestId: 'req-dlq-500', cached: false });
    await entryGone(serverError.id);
    expect(await replaysOf(serverError.id)).toEqual([replay]);
    // The original scan still reads as failed.
    expect((await svc.get(`/api/scans/${serverError.jobId}`)).json.status).toBe('failed');
  });

  it('returns a replay that fails again to the same entry, with its new attempts and the retry marked failed', async () => {
    const url = switchable('/flaky', 500);
    const id = await submit(url);
    const first = await entryOf(id);
    const res = await svc.request({ method: 'POST', url: `/admin/dlq/retry/${first.id}`, headers: AUTH });
    expect(res.status, res.body).toBe(202);
    const replay = res.json.jobId as string;
    expect((await svc.finished(replay)).status).toBe('failed');
    flaky = await entryOf(replay, (e) => e.status === 'dead' && e.retries[0]?.outcome === 'failed');
    expect(flaky.id).toBe(first.id);
    expect(flaky.retries).toEqual([{ at: expect.any(String), jobId: replay, outcome: 'failed' }]);
    expect(flaky.attemptsMade).toBe(6);
    expect(flaky.attempts.map((a) => a.jobId)).toEqual([id, id, id, replay, replay, replay]);
    expect(flaky.lastFailedAt > first.lastFailedAt).toBe(true);
    expect((await allEntries()).filter((e) => e.request.url === url)).toHaveLength(1);
  });

  it('starts one job when the same entry is retried twice at once', async () => {
    const before = await replaysOf(flaky.id);
    const answers = await Promise.all([0, 1].map(() => svc.request({ method: 'POST', url: `/admin/dlq/retry/${flaky.id}`, headers: AUTH })));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409]);
    const conflict = answers.find((a) => a.status === 409)!;
    expect(conflict.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(conflict.json).toMatchObject({ code: 'CONFLICT', status: 409 });
    const after = await replaysOf(flaky.id);
    expect(after.filter((id) => !before.includes(id))).toHaveLength(1);
    // Still 500: the replay fails and the entry is dead again, two retries in its history.
    flaky = await entryOf(flaky.jobId, (e) => e.status === 'dead' && e.retries.length === 2 && e.retries.every((r) => r.outcome === 'failed'));
    expect(flaky.attemptsMade).toBe(9);
  });

  it('retries in bulk by error code, leaving other codes alone', async () => {
    const a = await submit(switchable('/gone-a', 404));
    const b = await submit(switchable('/gone-b', 404));
    const [ea, eb] = await Promise.all([entryOf(a), entryOf(b)]);
    statusOf.set('/gone-a', 200);
    statusOf.set('/gone-b', 200);

    const bad = await svc.post('/admin/dlq/retry', { code: 'HTTP_CLIENT_ERROR', all: true }, AUTH);
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await svc.post('/admin/dlq/retry', {}, AUTH)).status).toBe(400);

    const res = await svc.post('/admin/dlq/retry', { code: 'HTTP_CLIENT_ERROR' }, AUTH);
    expect(res.status, res.body).toBe(202);
    expect(res.json.matched).toBe(3);
    expect(res.json.retried.map((r: { id: string }) => r.id).sort()).toEqual([ea.id, eb.id, clientError.id].sort());
    expect(res.json.skipped).toEqual([]);
    await Promise.all([entryGone(ea.id), entryGone(eb.id)]);
    // /missing still answers 404: back in the DLQ with one failed retry; the 500 entry was not touched.
    clientError = await entryOf(clientError.jobId, (e) => e.status === 'dead' && e.retries.length === 1 && e.retries[0]!.outcome === 'failed');
    expect((await svc.get(`/admin/dlq/jobs/${flaky.id}`, AUTH)).json.retries).toHaveLength(2);
  });

  it('groups stats by code, host and day, and shows the DLQ in /health/detailed', async () => {
    const stats = (await svc.get('/admin/dlq/stats', AUTH)).json;
    const today = new Date().toISOString().slice(0, 10);
    expect(stats).toEqual({
      total: 2,
      byCode: { HTTP_CLIENT_ERROR: 1, HTTP_SERVER_ERROR: 1 },
      byHost: { [`127.0.0.1:${fixture.port}`]: 2 },
      byDay: { [today]: 2 },
      oldest: clientError.lastFailedAt < flaky.lastFailedAt ? clientError.lastFailedAt : flaky.lastFailedAt,
      newest: clientError.lastFailedAt < flaky.lastFailedAt ? flaky.lastFailedAt : clientError.lastFailedAt,
    });
    const byCode = await allEntries('&code=HTTP_SERVER_ERROR');
    expect(byCode.map((e) => e.id)).toEqual([flaky.id]);
    const list = await allEntries();
    expect(list.map((e) => e.lastFailedAt)).toEqual([...list.map((e) => e.lastFailedAt)].sort().reverse());

    const health = await svc.get('/health/detailed');
    expect(health.json.dlq).toEqual({ size: 2, oldest: stats.oldest, lastHourAdded: 2 });
  });

  it('deletes by id, answers unknown ids with 404 problem+json, and needs the admin token', async () => {
    for (const [method, url] of [
      ['GET', '/admin/dlq/jobs/dlq_unknown'],
      ['DELETE', '/admin/dlq/jobs/dlq_unknown'],
      ['POST', '/admin/dlq/retry/dlq_unknown'],
      ['GET', '/admin/dlq/jobs/not-an-id'],
    ] as const) {
      const res = await svc.request({ method, url, headers: AUTH });
      expect(res.status, `${method} ${url}`).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json).toMatchObject({ code: 'NOT_FOUND', detail: expect.stringMatching(/no DLQ entry with id/) });
    }
    expect((await svc.get('/admin/dlq/stats')).status).toBe(401);
    expect((await svc.get('/admin/dlq/jobs?limit=0', AUTH)).json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await svc.request({ method: 'PUT', url: '/admin/dlq/stats', headers: AUTH })).status).toBe(405);

    const del = await svc.request({ method: 'DELETE', url: `/admin/dlq/jobs/${clientError.id}`, headers: AUTH });
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ id: clientError.id, deleted: true });
    expect((await svc.get(`/admin/dlq/jobs/${clientError.id}`, AUTH)).status).toBe(404);
    expect((await svc.get('/admin/dlq/stats', AUTH)).json).toMatchObject({ total: 1, byCode: { HTTP_SERVER_ERROR: 1 } });
  });

  it('purges by age', async () => {
    const bad = await svc.request({ method: 'POST', url: '/admin/dlq/purge?olderThan=soon', headers: AUTH });
    expect(bad.status).toBe(400);
    expect(bad.json.errors).toEqual([{ field: 'olderThan', message: expect.any(String) }]);
    // A bare number would be milliseconds (the whole DLQ): a unit is required.
    const bare = await svc.request({ method: 'POST', url: '/admin/dlq/purge?olderThan=30', headers: AUTH });
    expect(bare.status).toBe(400);
    expect(bare.json.errors).toEqual([{ field: 'olderThan', message: 'expected a duration with its unit such as 12h, 30d' }]);
    // Nothing is a day old yet.
    expect((await svc.request({ method: 'POST', url: '/admin/dlq/purge?olderThan=1d', headers: AUTH })).json).toEqual({ removed: 0, olderThan: '1d' });
    expect((await svc.request({ method: 'POST', url: '/admin/dlq/purge?olderThan=0ms', headers: AUTH })).json).toEqual({ removed: 1, olderThan: '0ms' });
    expect((await svc.get('/admin/dlq/stats', AUTH)).json).toEqual({ total: 0, byCode: {}, byHost: {}, byDay: {}, oldest: null, newest: null });
  });
});

describe('a batch whose failed page is replayed from the DLQ', () => {
  it('counts the replay in the failed scan\'s place: the batch completes once the page is fixed and retried', async () => {
    const ok = switchable('/batch-ok', 200);
    const broken = switchable('/batch-broken', 404);
    const res = await svc.post('/api/batches', { urls: [ok, broken] });
    expect(res.status, res.body).toBe(202);
    const batchId = res.json.id as string;
    const read = async () => (await svc.get(`/api/batches/${batchId}`)).json;
    const first = await waitFor(async () => ((b) => (b.status === 'completed' ? b : undefined))(await read()), { timeoutMs: 60_000, what: 'the batch to finish' });
    expect(first.counts).toEqual({ queued: 0, active: 0, completed: 1, failed: 1 });
    const failed = first.scans.find((s: { url: string }) => s.url === broken);
    expect(failed).toMatchObject({ status: 'failed', error: 'HTTP_CLIENT_ERROR' });
    expect(failed.replayId).toBeUndefined();

    const entry = await entryOf(failed.id);
    expect(entry.batchId).toBe(batchId);
    statusOf.set('/batch-broken', 200);
    const retried = await svc.request({ method: 'POST', url: `/admin/dlq/retry/${entry.id}`, headers: AUTH });
    expect(retried.status, retried.body).toBe(202);
    const replayId = retried.json.jobId as string;
    await entryGone(entry.id);

    const after = await waitFor(async () => ((b) => (b.status === 'completed' ? b : undefined))(await read()), { timeoutMs: 60_000, what: 'the batch to finish again' });
    expect(after.counts).toEqual({ queued: 0, active: 0, completed: 2, failed: 0 });
    // The batch still lists its own scan ids; the replayed one names its replay.
    expect(after.scans.map((s: { id: string }) => s.id)).toEqual(first.scans.map((s: { id: string }) => s.id));
    expect(after.scans.find((s: { url: string }) => s.url === broken)).toEqual({ id: failed.id, url: broken, status: 'completed', replayId, links: { self: `/api/scans/${replayId}`, report: `/api/scans/${replayId}/report` } });
    // The replay is a scan of the batch.
    expect((await svc.get(`/api/scans/${replayId}`)).json).toMatchObject({ status: 'completed', batchId });
  });
});
