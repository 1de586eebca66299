import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/domain/scan.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, type TestService } from '../support/service.js';

let redis: RedisServer;
let fixture: FixtureServer;
let svc: TestService;

const OK_PAGE = page('<h1>Fine</h1><p>Nothing to report.</p>');
const ERROR_PAGE = page('<h1>Server error</h1>');

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  fixture
    .html('/missing.html', page('<h1>Not found</h1>'), { status: 404 })
    .html('/broken.html', ERROR_PAGE, { status: 500 })
    // 500 for the first two requests, then the page.
    .route('/flaky.html', (_req, res) => {
      const failing = fixture.requestsTo('/flaky.html').length <= 2;
      res.writeHead(failing ? 500 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(failing ? ERROR_PAGE : OK_PAGE);
    });
  svc = await startTestService({ redisUrl: redis.url, worker: 2, settings: { SCAN_ATTEMPTS: '3', SCAN_BACKOFF: '100ms' } });
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
  await fixture?.close();
});

async function submit(path: string): Promise<string> {
  const res = await svc.post('/api/scans', { url: fixture.url(path) });
  expect(res.status, res.body).toBe(202);
  return res.json.id as string;
}

describe('retries: permanent errors fail at once, retryable ones use every attempt', () => {
  it('fails a 404 page after exactly one attempt, a 500 page after three, and completes a page that recovers on the third', async () => {
    const [missing, broken, flaky] = await Promise.all([submit('/missing.html'), submit('/broken.html'), submit('/flaky.html')]);
    const [m, b, f] = await Promise.all([svc.finished(missing), svc.finished(broken), svc.finished(flaky)]);

    expect(m).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'HTTP_CLIENT_ERROR', retryable: false } });
    expect(m.result).toMatchObject({ status: 'error', httpStatus: 404 });
    expect(b).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'HTTP_SERVER_ERROR', retryable: true } });
    expect(b.result).toMatchObject({ status: 'error', httpStatus: 500 });
    expect(f).toMatchObject({ status: 'completed', attempts: 3 });
    expect(f.result).toMatchObject({ status: 'ok', httpStatus: 200, violations: [] });
    expect(f.error).toBeUndefined();

    // Nothing more is coming: the page loads match the attempts exactly.
    await new Promise((r) => setTimeout(r, 500));
    expect(fixture.requestsTo('/missing.html')).toHaveLength(1);
    expect(fixture.requestsTo('/broken.html')).toHaveLength(3);
    expect(fixture.requestsTo('/flaky.html')).toHaveLength(3);

    // BullMQ agrees: failed jobs stay failed with the code in the reason; the recovered one completed.
    const q = svc.service.queue;
    const [jm, jb, jf] = await Promise.all([Job.fromId(q, missing), Job.fromId(q, broken), Job.fromId(q, flaky)]);
    expect(await jm!.getState()).toBe('failed');
    expect(jm!.attemptsMade).toBe(1);
    expect(jm!.failedReason).toMatch(/^HTTP_CLIENT_ERROR: /);
    expect(await jb!.getState()).toBe('failed');
    expect(jb!.attemptsMade).toBe(3);
    expect(jb!.failedReason).toMatch(/^HTTP_SERVER_ERROR: /);
    expect(await jf!.getState()).toBe('completed');

    // The worker logged each failed attempt, and only the last as final.
    const failures = svc.logs.events('scan.failed', (e) => e.jobId === broken);
    expect(failures.map((e) => e.final)).toEqual([false, false, true]);
    expect(svc.logs.events('scan.failed', (e) => e.jobId === missing).map((e) => e.final)).toEqual([true]);

    // A failed scan's report says so.
    const report = JSON.parse((await svc.get(`/api/scans/${missing}/report`)).body) as Report;
    expect(report.summary).toMatchObject({ pages: 1, pagesFailed: 1 });
    expect(report.pages[0]!.error!.code).toBe('HTTP_CLIENT_ERROR');
  });

  it('does not serve a failed scan from the cache: the same request runs again', async () => {
    const jobs = await totalJobs(svc.service);
    const res = await svc.post('/api/scans', { url: fixture.url('/missing.html') });
    expect(res.status, res.body).toBe(202);
    expect(res.json.cached).toBeUndefined();
    expect(res.json.deduplicated).toBeUndefined();
    expect(await totalJobs(svc.service)).toBe(jobs + 1);
    expect(await svc.finished(res.json.id)).toMatchObject({ status: 'failed', attempts: 1 });
    expect(fixture.requestsTo('/missing.html')).toHaveLength(2);
  });
});
