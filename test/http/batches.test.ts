import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, waitFor, type JsonResponse, type TestService } from '../support/service.js';

const GIF = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==';

let redis: RedisServer;
let fixture: FixtureServer;
/** Stands for a service on the internal network that a sitemap must not make the API fetch. */
let internal: FixtureServer;
let svc: TestService;
const others: TestService[] = [];

const urlset = (locs: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs.map((l) => `<url><loc>${l}</loc></url>`).join('')}</urlset>`;
const sitemapindex = (locs: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs.map((l) => `<sitemap><loc>${l}</loc></sitemap>`).join('')}</sitemapindex>`;

beforeAll(async () => {
  [redis, fixture, internal] = await Promise.all([startRedisServer(), startFixtureServer(), startFixtureServer()]);
  for (const name of ['a', 'b', 'c', 's1', 's2']) fixture.html(`/${name}.html`, page(`<h1>Page ${name}</h1><img src="${GIF}">`));
  fixture
    .body('/sitemap.xml', 'application/xml', urlset([fixture.url('/s1.html'), fixture.url('/s2.html'), fixture.url('/s1.html')]))
    .body('/bad-sitemap.xml', 'application/xml', urlset([fixture.url('/s1.html'), 'http://169.254.169.254/latest/meta-data/']))
    .body('/not-a-sitemap.xml', 'text/html', page('<h1>Not XML</h1>'))
    .body('/index-to-internal.xml', 'application/xml', sitemapindex([internal.url('/sitemap.xml')]))
    .body('/index-partly-unreadable.xml', 'application/xml', sitemapindex([internal.url('/sitemap.xml'), fixture.url('/no-such-child.xml'), fixture.url('/sitemap.xml')]))
    .redirect('/redirect-to-internal.xml', internal.url('/sitemap.xml'));
  internal.body('/sitemap.xml', 'application/xml', urlset([fixture.url('/s1.html')]));
  // Seven pages, more than MAX_BATCH_URLS (5).
  for (let i = 0; i < 7; i++) fixture.html(`/big-${i}.html`, page(`<h1>Big ${i}</h1>`));
  fixture.body('/big-sitemap.xml', 'application/xml', urlset(Array.from({ length: 7 }, (_, i) => fixture.url(`/big-${i}.html`))));
  // An index whose 50th document (the most one batch reads) ends with the fifth page, a 51st after it.
  const children = Array.from({ length: 50 }, (_, i) => fixture.url(`/child-${i}.xml`));
  const five = ['/a.html', '/b.html', '/c.html', '/s1.html', '/s2.html'].map((p) => fixture.url(p));
  children.forEach((child, i) => fixture.body(`/child-${i}.xml`, 'application/xml', urlset(i < 5 ? [five[i]!] : i === 49 ? [fixture.url('/big-0.html')] : [])));
  fixture.body('/index-of-fifty.xml', 'application/xml', sitemapindex(children));
  svc = await startTestService({ redisUrl: redis.url, worker: 2, settings: { MAX_BATCH_URLS: '5' } });
});

afterAll(async () => {
  await Promise.allSettled([svc?.close(), ...others.map((o) => o.close())]);
  await redis?.close();
  await fixture?.close();
  await internal?.close();
});

/** Polls GET /api/batches/:id until every scan finished. */
async function batchFinished(id: string): Promise<Record<string, any>> {
  return waitFor(
    async () => {
      const res = await svc.get(`/api/batches/${id}`);
      if (res.status !== 200) throw new Error(`GET /api/batches/${id} answered ${res.status}: ${res.body}`);
      return res.json.status === 'completed' ? res.json : undefined;
    },
    { timeoutMs: 45_000, what: `batch ${id}` },
  );
}

function expectFieldProblem(res: JsonResponse, field: string, code = 'VALIDATION_FAILED'): void {
  expect(res.status, res.body).toBe(400);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.json.code).toBe(code);
  expect((res.json.errors as Array<{ field: string }>).map((e) => e.field)).toContain(field);
}

describe('POST /api/batches and GET /api/batches/:id', () => {
  it('queues three URLs as one batch and counts them until all three completed', async () => {
    const urls = ['/a.html', '/b.html', '/c.html'].map((p) => fixture.url(p));
    const res = await svc.post('/api/batches', { urls, wcagLevel: 'A' });
    expect(res.status, res.body).toBe(202);
    expect(res.json.id).toMatch(/^batch_[A-Za-z0-9_-]+$/);
    expect(res.json).toMatchObject({ status: 'queued', total: 3, links: { self: `/api/batches/${res.json.id}` } });
    expect(res.headers.location).toBe(`/api/batches/${res.json.id}`);

    const batch = await batchFinished(res.json.id);
    expect(batch).toMatchObject({ id: res.json.id, status: 'completed', total: 3, counts: { queued: 0, active: 0, completed: 3, failed: 0 } });
    expect(batch.scans.map((s: { url: string }) => s.url)).toEqual(urls);
    for (const scan of batch.scans as Array<{ id: string; status: string; links: { self: string; report: string } }>) {
      expect(scan.id).toMatch(/^scan_/);
      expect(scan.status).toBe('completed');
      expect(scan.links).toEqual({ self: `/api/scans/${scan.id}`, report: `/api/scans/${scan.id}/report` });
      expect((await svc.get(`${scan.links.report}?format=csv`)).status).toBe(200);
      // Each scan is a scan like any other, tied to its batch, with the batch's options.
      const view = (await svc.get(`/api/scans/${scan.id}`)).json;
      expect(view).toMatchObject({ status: 'completed', batchId: res.json.id, options: { wcagLevel: 'A' } });
      expect(view.result.violations.map((v: { id: string }) => v.id)).toEqual(['image-alt']);
    }
  });

  it('queues one scan for a page named twice under different #fragments; both entries get its result', async () => {
    const jobs = await totalJobs(svc.service);
    const url = fixture.url('/a.html?twice');
    const res = await svc.post('/api/batches', { urls: [`${url}#one`, `${url}#two`] });
    expect(res.status, res.body).toBe(202);
    const batch = await batchFinished(res.json.id);
    expect(batch.scans).toHaveLength(2);
    expect(batch.scans[0].id).toBe(batch.scans[1].id);
    expect(batch.counts).toMatchObject({ completed: 2, failed: 0 });
    expect(await totalJobs(svc.service)).toBe(jobs + 1);
    expect(fixture.requestsTo('/a.html').filter((r) => r.url.includes('twice'))).toHaveLength(1);
  });

  it('reads the URLs of a sitemap served by the target site (duplicates once)', async () => {
    const res = await svc.post('/api/batches', { sitemap: fixture.url('/sitemap.xml') });
    expect(res.status, res.body).toBe(202);
    expect(res.json.total).toBe(2);
    const batch = await batchFinished(res.json.id);
    expect(batch.counts).toMatchObject({ completed: 2, failed: 0 });
    expect(batch.scans.map((s: { url: string }) => s.url)).toEqual([fixture.url('/s1.html'), fixture.url('/s2.html')]);
    expect(fixture.requestsTo('/sitemap.xml')).toHaveLength(1);
  });

  it('refuses more than MAX_BATCH_URLS, an invalid URL by its index, and malformed bodies, queueing nothing', async () => {
    const jobs = await totalJobs(svc.service);
    const six = Array.from({ length: 6 }, (_, i) => fixture.url(`/many-${i}.html`));
    const tooMany = await svc.post('/api/batches', { urls: six });
    expectFieldProblem(tooMany, 'urls');
    expect(tooMany.json.detail).toMatch(/at most 5/);

    expectFieldProblem(await svc.post('/api/batches', { urls: [fixture.url('/a.html'), 'not a url', fixture.url('/b.html')] }), 'urls[1]', 'INVALID_URL');
    expectFieldProblem(await svc.post('/api/batches', { urls: [fixture.url('/a.html'), fixture.url('/b.html'), 'ftp://example.com/'] }), 'urls[2]', 'UNSUPPORTED_SCHEME');
    expectFieldProblem(await svc.post('/api/batches', { urls: [fixture.url('/a.html'), 7] }), 'urls[1]');
    // Several bad URLs: every one named, in order (not whichever check failed first).
    const several = await svc.post('/api/batches', { urls: ['ftp://example.com/', fixture.url('/a.html'), 'not a url', 'javascript:alert(1)'] });
    expect(several.status, several.body).toBe(400);
    expect(several.json).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((several.json.errors as Array<{ field: string }>).map((e) => e.field)).toEqual(['urls[0]', 'urls[2]', 'urls[3]']);
    expectFieldProblem(await svc.post('/api/batches', { urls: [] }), 'urls');
    expectFieldProblem(await svc.post('/api/batches', {}), 'urls');
    expectFieldProblem(await svc.post('/api/batches', { urls: [fixture.url('/a.html')], sitemap: fixture.url('/sitemap.xml') }), 'urls');
    expectFieldProblem(await svc.post('/api/batches', { urls: [fixture.url('/a.html')], rules: ['nope-rule'] }), 'rules', 'INVALID_OPTIONS');
    expectFieldProblem(await svc.post('/api/batches', { sitemap: fixture.url('/not-a-sitemap.xml') }), 'sitemap');
    expectFieldProblem(await svc.post('/api/batches', { sitemap: fixture.url('/no-such-sitemap.xml') }), 'sitemap');
    expect(await totalJobs(svc.service)).toBe(jobs);
    expect(await svc.service.redis.keys(svc.service.keys.inflight('*'))).toEqual([]);
  });

  it('answers a batch record it cannot read with a plain 500, its parser\'s message kept out of the answer', async () => {
    await svc.service.redis.set(svc.service.keys.batch('batch_corruptrecord'), '{', 'PX', 60_000);
    const res = await svc.get('/api/batches/batch_corruptrecord');
    expect(res.status, res.body).toBe(500);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json.code).toBe('INTERNAL');
    expect(res.body).not.toMatch(/JSON|Unexpected|position/);
  });

  it('answers 404 for an unknown batch id', async () => {
    for (const id of ['batch_doesnotexist', 'not-a-batch']) {
      const res = await svc.get(`/api/batches/${id}`);
      expect(res.status).toBe(404);
      expect(res.json.code).toBe('NOT_FOUND');
    }
  });
});

describe('a sitemap listing more pages than a batch takes', () => {
  it('queues up to the cap and says it was cut, at which limit, in the 202 and in GET /api/batches/:id', async () => {
    const res = await svc.post('/api/batches', { sitemap: fixture.url('/big-sitemap.xml') });
    expect(res.status, res.body).toBe(202);
    expect(res.json).toMatchObject({ total: 5, truncated: true, limit: 5, limitBy: 'MAX_BATCH_URLS' });
    const view = await svc.get(`/api/batches/${res.json.id}`);
    expect(view.json).toMatchObject({ total: 5, truncated: true, limit: 5, limitBy: 'MAX_BATCH_URLS' });

    const limited = await svc.post('/api/batches', { sitemap: fixture.url('/big-sitemap.xml'), limit: 2 });
    expect(limited.status, limited.body).toBeLessThan(300);
    expect(limited.json).toMatchObject({ total: 2, truncated: true, limit: 2, limitBy: 'limit' });
    expect((await svc.get(`/api/batches/${limited.json.id}`)).json).toMatchObject({ truncated: true, limit: 2 });
  });

  it('says nothing of a cut when the sitemap lists no more than it took', async () => {
    const whole = await svc.post('/api/batches', { sitemap: fixture.url('/sitemap.xml') });
    expect(whole.status, whole.body).toBeLessThan(300);
    expect(whole.json.total).toBe(2);
    expect(whole.json).not.toHaveProperty('truncated');
    const exact = await svc.post('/api/batches', { sitemap: fixture.url('/sitemap.xml'), limit: 2 });
    expect(exact.json).not.toHaveProperty('truncated');
    expect((await svc.get(`/api/batches/${exact.json.id}`)).json).not.toHaveProperty('truncated');
  });

  it('an index whose cap is reached at its 50th document is still read, as before the cut was told', async () => {
    const res = await svc.post('/api/batches', { sitemap: fixture.url('/index-of-fifty.xml') });
    expect(res.status, res.body).toBeLessThan(300);
    expect(res.json.total).toBe(5);
  });
});

describe('a batch whose pages come from the cache', () => {
  it('all of them cached: 200 with the batch as GET /api/batches/:id answers it, cached: true, not 202 queued', async () => {
    const urls = [fixture.url('/a.html?cached-batch'), fixture.url('/b.html?cached-batch')];
    const first = await svc.post('/api/batches', { urls });
    expect(first.status, first.body).toBe(202);
    await batchFinished(first.json.id);

    const again = await svc.post('/api/batches', { urls });
    expect(again.status, again.body).toBe(200);
    expect(again.headers['content-location']).toBe(`/api/batches/${again.json.id}`);
    expect(again.headers.location).toBe(`/api/batches/${again.json.id}`);
    expect(again.json).toMatchObject({ status: 'completed', cached: true, total: 2, counts: { completed: 2 }, links: { self: `/api/batches/${again.json.id}` } });
    const view = await svc.get(`/api/batches/${again.json.id}`);
    expect(view.json).toMatchObject({ status: 'completed', counts: again.json.counts });
    expect(view.json.scans).toEqual(again.json.scans);

    // One page cached, one new: accepted as any batch (202 queued, with Location); GET tells how far it got.
    const mixed = await svc.post('/api/batches', { urls: [urls[0], fixture.url('/c.html?cached-batch')] });
    expect(mixed.status, mixed.body).toBe(202);
    expect(mixed.json.status).toBe('queued');
    expect(mixed.headers.location).toBe(`/api/batches/${mixed.json.id}`);
    expect(['active', 'completed']).toContain((await svc.get(`/api/batches/${mixed.json.id}`)).json.status);
  });
});

describe('GET /api/batches/:id and scan views', () => {
  it('has links as a scan has, and a failed scan its error object (errorDetail) beside its code', async () => {
    const res = await svc.post('/api/batches', { urls: [fixture.url('/a.html?links'), fixture.url('/no-such-page.html')] });
    expect(res.status, res.body).toBe(202);
    const batch = await batchFinished(res.json.id);
    expect(batch.links).toEqual({ self: `/api/batches/${res.json.id}` });
    const failed = batch.scans[1] as Record<string, any>;
    expect(failed.status).toBe('failed');
    const scanView = (await svc.get(`/api/scans/${failed.id}`)).json;
    expect(failed.error).toBe(scanView.error.code);
    expect(failed.errorDetail).toEqual(scanView.error);
    expect(failed.errorDetail).toMatchObject({ code: 'HTTP_CLIENT_ERROR', retryable: false, message: expect.any(String) });
  });
});

describe('sitemaps under the production target policy', () => {
  let guarded: TestService;

  beforeAll(async () => {
    // Private targets refused, the fixture site (only) allowed by name and port.
    guarded = await startTestService({
      redisUrl: redis.url,
      settings: { ALLOW_PRIVATE_TARGETS: 'false', SCAN_ALLOWED_HOSTS: `127.0.0.1:${fixture.port}` },
    });
    others.push(guarded);
  });

  it('names a blocked page of the sitemap by its index', async () => {
    const res = await guarded.post('/api/batches', { sitemap: fixture.url('/bad-sitemap.xml') });
    expectFieldProblem(res, 'sitemap[1]', 'BLOCKED_TARGET');
    expect(await totalJobs(guarded.service)).toBe(0);
  });

  it('does not fetch a nested sitemap or a redirect target the policy refuses', async () => {
    const before = internal.requests.length;
    expectFieldProblem(await guarded.post('/api/batches', { sitemap: fixture.url('/index-to-internal.xml') }), 'sitemap');
    expectFieldProblem(await guarded.post('/api/batches', { sitemap: fixture.url('/redirect-to-internal.xml') }), 'sitemap');
    expect(internal.requests.slice(before).map((r) => r.path)).toEqual([]);
    expect(await totalJobs(guarded.service)).toBe(0);
  });

  it('skips the children of an index it cannot read (refused by the policy, 404), naming them, and queues the pages of the others', async () => {
    const before = internal.requests.length;
    const jobs = await totalJobs(guarded.service);
    const res = await guarded.post('/api/batches', { sitemap: fixture.url('/index-partly-unreadable.xml') });
    expect(res.status, res.body).toBe(202);
    expect(res.json.total).toBe(2);
    expect(res.json.skipped).toEqual([
      { sitemap: internal.url('/sitemap.xml'), message: expect.stringMatching(/^sitemap http:\/\/127\.0\.0\.1:\d+\/sitemap\.xml: refusing to scan 127\.0\.0\.1: /) },
      { sitemap: fixture.url('/no-such-child.xml'), message: `sitemap ${fixture.url('/no-such-child.xml')}: HTTP 404 Not Found` },
    ]);
    expect(internal.requests.slice(before)).toEqual([]);
    expect(await totalJobs(guarded.service)).toBe(jobs + 2);
    expect(guarded.logs.events('batch.sitemap.skipped')).toHaveLength(1);
  });

  it('refuses a sitemap on a private address outright', async () => {
    expectFieldProblem(await guarded.post('/api/batches', { sitemap: internal.url('/sitemap.xml') }), 'sitemap', 'BLOCKED_TARGET');
  });
});
