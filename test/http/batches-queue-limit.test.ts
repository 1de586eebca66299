import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, type TestService } from '../support/service.js';

/** No worker runs: what is admitted stays queued, so the queue's depth is what the tests put there. */
let redis: RedisServer;
let fixture: FixtureServer;
let svc: TestService;

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  const locs = ['x', 'y', 'z'].map((n) => `<url><loc>${fixture.url(`/${n}.html`)}</loc></url>`).join('');
  fixture.body('/sitemap.xml', 'application/xml', `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs}</urlset>`);
  svc = await startTestService({ redisUrl: redis.url, settings: { MAX_QUEUE_DEPTH: '2', MAX_BATCH_URLS: '10' } });
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
  await fixture?.close();
});

const urls = (...names: string[]) => names.map((n) => `http://127.0.0.1:9/${n}`);

describe('a batch larger than MAX_QUEUE_DEPTH', () => {
  it('is a 400 naming urls (it can never fit, so no Retry-After), while a batch that does not fit yet is a 503 to retry', async () => {
    const tooBig = await svc.post('/api/batches', { urls: urls('a', 'b', 'c') });
    expect(tooBig.status, tooBig.body).toBe(400);
    expect(tooBig.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(tooBig.headers['retry-after']).toBeUndefined();
    expect(tooBig.json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(tooBig.json.errors).toEqual([{ field: 'urls', message: expect.stringMatching(/3 new scans .*MAX_QUEUE_DEPTH.* 2/) }]);
    expect(await totalJobs(svc.service)).toBe(0);

    const sitemap = await svc.post('/api/batches', { sitemap: fixture.url('/sitemap.xml') });
    expect(sitemap.status, sitemap.body).toBe(400);
    expect(sitemap.json.errors).toEqual([{ field: 'sitemap', message: expect.stringMatching(/3 new scans .*MAX_QUEUE_DEPTH.* 2.*\(or set limit\)/) }]);
    expect(await totalJobs(svc.service)).toBe(0);

    const fits = await svc.post('/api/batches', { urls: urls('a', 'b') });
    expect(fits.status, fits.body).toBe(202);

    // Fits the limit, not the room left: retryable as before.
    const later = await svc.post('/api/batches', { urls: urls('c') });
    expect(later.status, later.body).toBe(503);
    expect(later.json).toMatchObject({ code: 'QUEUE_FULL' });
    expect(later.headers['retry-after']).toBe('5');

    // Pages already queued need no room: only the new ones count against the limit.
    const joined = await svc.post('/api/batches', { urls: urls('a', 'b') });
    expect(joined.status, joined.body).toBe(202);
    expect(await totalJobs(svc.service)).toBe(2);
  });
});
