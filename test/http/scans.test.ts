import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageResult, Report } from '../../src/domain/scan.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, jobCounts, startTestService, totalJobs, waitFor, type TestService } from '../support/service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A 1x1 GIF, inline: the page needs no second request. */
const GIF = 'data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==';
// image-alt (critical) and an unlabelled input (label): two findings a report must carry.
const VIOLATING = page(`<h1>Violations</h1><img id="logo" src="${GIF}"><input id="email" type="text">`);

let redis: RedisServer;
let fixture: FixtureServer;
let svc: TestService;
const others: TestService[] = [];

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  for (const path of ['/violations.html', '/singular.html', '/wait.html', '/dedup.html']) fixture.html(path, VIOLATING);
  fixture.html('/slow.html', page('<h1>Slow</h1>'), { delayMs: 4_000 });
  svc = await startTestService({ redisUrl: redis.url, worker: 2 });
});

afterAll(async () => {
  await Promise.allSettled([svc?.close(), ...others.map((o) => o.close())]);
  await redis?.close();
  await fixture?.close();
});

/** A page result without what legitimately differs between two runs (durations). */
function comparable(result: PageResult): Omit<PageResult, 'timings'> & { timings: string[] } {
  return { ...result, timings: Object.keys(result.timings).sort() };
}

const cli = promisify(execFile);

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** The first scan of the file, reused by the report and cache tests. */
let first: { id: string; view: Record<string, any> };

describe('POST /api/scans, GET /api/scans/:id and reports', () => {
  it('answers 202 with the id, status, links and Location, then completes with the page result `wcagai scan --format json` prints', async () => {
    const url = fixture.url('/violations.html');
    // The CLI scans the same page at the same time: its JSON page is the shape the API must store.
    const cliRun = cli(process.execPath, [BIN, 'scan', url, '--format', 'json'], { cwd: ROOT, env: baseEnv(), maxBuffer: 16 * 2 ** 20 }).catch((err: { stdout?: string; code?: number }) => err);

    const res = await svc.post('/api/scans', { url }, { 'x-request-id': 'req-submit-1' });
    expect(res.status, res.body).toBe(202);
    expect(res.json.id).toMatch(/^scan_[A-Za-z0-9_-]+$/);
    expect(res.json.status).toBe('queued');
    expect(res.json.links).toEqual({ self: `/api/scans/${res.json.id}`, report: `/api/scans/${res.json.id}/report` });
    expect(res.headers.location).toBe(`/api/scans/${res.json.id}`);
    expect(res.json.deduplicated).toBeUndefined();

    const view = await svc.finished(res.json.id);
    expect(view).toMatchObject({ id: res.json.id, status: 'completed', url, attempts: 1, cached: false, requestId: 'req-submit-1' });
    expect(view.options).toEqual({ wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false });
    for (const field of ['createdAt', 'startedAt', 'finishedAt']) expect(Date.parse(view[field])).not.toBeNaN();
    expect(view.error).toBeUndefined();
    const result = view.result as PageResult;
    expect(result).toMatchObject({ url, finalUrl: url, status: 'ok', httpStatus: 200 });
    expect(result.violations.map((v) => v.id).sort()).toEqual(['image-alt', 'label']);

    const run = (await cliRun) as { stdout?: string };
    const report = JSON.parse(run.stdout ?? '') as Report;
    expect(report.pages).toHaveLength(1);
    expect(comparable(result)).toEqual(comparable(report.pages[0]!));

    // The worker logged the scan under the request's id, so one id ties API and worker lines together.
    expect(svc.logs.events('scan.completed', (e) => e.jobId === res.json.id)[0]?.requestId).toBe('req-submit-1');
    first = { id: res.json.id, view };
  });

  it('renders every report format of a finished scan with its content type', async () => {
    const base = `/api/scans/${first.id}/report`;
    const result = first.view.result as PageResult;

    const json = await svc.get(`${base}?format=json`);
    expect(json.status).toBe(200);
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    const report = JSON.parse(json.body) as Report;
    expect(report.pages).toEqual([result]);
    expect(report.summary).toMatchObject({ pages: 1, pagesFailed: 0, violations: 2 });
    expect(report.tool.name).toBe('wcagai');
    // Without ?format the report is JSON.
    expect((await svc.get(base)).body).toBe(json.body);

    const html = await svc.get(`${base}?format=html`);
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.body).toMatch(/^<!doctype html>/i);
    expect(html.body).toContain('image-alt');

    const sarif = await svc.get(`${base}?format=sarif`);
    expect(sarif.status).toBe(200);
    expect(sarif.headers['content-type']).toBe('application/sarif+json; charset=utf-8');
    const log = JSON.parse(sarif.body) as { version: string; runs: Array<{ results: Array<{ ruleId: string }> }> };
    expect(log.version).toBe('2.1.0');
    expect(log.runs[0]!.results.map((r) => r.ruleId).sort()).toEqual(['image-alt', 'label']);

    const junit = await svc.get(`${base}?format=junit`);
    expect(junit.status).toBe(200);
    expect(junit.headers['content-type']).toBe('application/xml; charset=utf-8');
    expect(junit.body).toMatch(/^<\?xml /);
    expect(junit.body).toMatch(/<testsuites [^>]*failures="2"/);

    const csv = await svc.get(`${base}?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const [header, ...rows] = parseCsv(csv.body);
    expect(header).toEqual(['url', 'status', 'rule', 'impact', 'wcag', 'help', 'helpUrl', 'target', 'html', 'failureSummary', 'fingerprint', 'baseline']);
    expect(rows.map((r) => r[2]).sort()).toEqual(['image-alt', 'label']);
    expect(rows.every((r) => r.length === header!.length && r[0] === result.url)).toBe(true);

    const bad = await svc.get(`${base}?format=pdf`);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(bad.json.errors).toEqual([expect.objectContaining({ field: 'format' })]);
  });

  it('POST /api/scan (singular) submits the same way', async () => {
    const url = fixture.url('/singular.html');
    const res = await svc.post('/api/scan', { url, wcagLevel: 'A' });
    expect(res.status, res.body).toBe(202);
    expect(res.json).toMatchObject({ status: 'queued', links: { self: `/api/scans/${res.json.id}` } });
    expect(res.headers.location).toBe(`/api/scans/${res.json.id}`);
    const view = await svc.finished(res.json.id);
    expect(view).toMatchObject({ status: 'completed', url, options: { wcagLevel: 'A' } });
    const tags = (view.result as PageResult).rules.tags;
    expect(tags).toContain('wcag2a');
    expect(tags.filter((t) => /aa$/.test(t))).toEqual([]);
    expect((view.result as PageResult).violations.map((v) => v.id)).toContain('image-alt');
  });
});

describe('Prefer: wait', () => {
  it('wait=30 answers 200 with the completed scan, result included', async () => {
    const url = fixture.url('/wait.html');
    const res = await svc.post('/api/scans', { url }, { prefer: 'wait=30' });
    expect(res.status, res.body).toBe(200);
    expect(res.headers['preference-applied']).toBe('wait=30');
    expect(res.headers['content-location']).toBe(`/api/scans/${res.json.id}`);
    expect(res.json).toMatchObject({ status: 'completed', url, cached: false });
    expect((res.json.result as PageResult).violations.map((v) => v.id).sort()).toEqual(['image-alt', 'label']);
  });

  it('wait=1 on a slow page gives up after about a second with 202', async () => {
    const res = await svc.post('/api/scans', { url: fixture.url('/slow.html') }, { prefer: 'wait=1' });
    expect(res.status, res.body).toBe(202);
    expect(res.headers['preference-applied']).toBe('wait=1');
    // The status the scan had at the deadline: running by then, unless no worker was free yet.
    expect(['active', 'queued']).toContain(res.json.status);
    expect(res.ms).toBeGreaterThanOrEqual(950);
    // It still finishes, on its own.
    expect((await svc.finished(res.json.id)).status).toBe('completed');
  });

  it('stops waiting as soon as the client hangs up, and the scan still completes', async () => {
    const app = svc.service.app!;
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const hangUp = new AbortController();
    const url = fixture.url('/slow.html?hangup');
    const request = fetch(`${address}/api/scans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=60' },
      body: JSON.stringify({ url }),
      signal: hangUp.signal,
    }).catch((err: Error) => err);
    const queued = await waitFor(() => svc.logs.events('scan.queued', (e) => e.url === url)[0], { what: 'the scan to be queued' });
    hangUp.abort();
    expect(await request).toBeInstanceOf(Error);
    // Abandoned on the hang-up, not when wait=60 runs out (the test's own timeout is 60 s).
    await waitFor(() => svc.logs.events('scan.wait_abandoned', (e) => e.jobId === queued.jobId)[0], { what: 'the wait to be abandoned', timeoutMs: 20_000 });
    expect((await svc.finished(String(queued.jobId))).status).toBe('completed');
  });
});

describe('result cache and in-flight deduplication', () => {
  it('answers a repeated request from the stored result without a new job or page load', async () => {
    const url = fixture.url('/violations.html');
    const pageLoads = fixture.requestsTo('/violations.html').length;
    const jobs = await totalJobs(svc.service);

    const res = await svc.post('/api/scans', { url });
    expect(res.status, res.body).toBe(200);
    expect(res.json).toMatchObject({ id: first.id, status: 'completed', cached: true });
    expect(res.headers['content-location']).toBe(`/api/scans/${first.id}`);
    expect(res.json.result).toEqual(first.view.result);
    // A fragment does not make it another request.
    expect((await svc.post('/api/scans', { url: `${url}#main` })).json).toMatchObject({ id: first.id, cached: true });

    await new Promise((r) => setTimeout(r, 300));
    expect(fixture.requestsTo('/violations.html')).toHaveLength(pageLoads);
    expect(await totalJobs(svc.service)).toBe(jobs);
    expect(svc.logs.events('scan.queued', (e) => e.jobId === first.id && e.outcome === 'cached')).toHaveLength(2);

    // Other options are another request: a new job.
    const other = await svc.post('/api/scans', { url, bestPractice: true });
    expect(other.status, other.body).toBe(202);
    expect(other.json.id).not.toBe(first.id);
    expect(await totalJobs(svc.service)).toBe(jobs + 1);
    expect((await svc.finished(other.json.id)).status).toBe('completed');
  });

  it('five identical requests while the first is queued make one job; a worker started later runs it once', async () => {
    const api = await startTestService({ redisUrl: redis.url });
    others.push(api);
    const url = fixture.url('/dedup.html');
    const answers = await Promise.all(Array.from({ length: 5 }, () => api.post('/api/scans', { url })));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    const ids = new Set(answers.map((a) => a.json.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids] as [string];
    expect(answers.filter((a) => a.json.deduplicated === true)).toHaveLength(4);
    expect(answers.every((a) => a.headers.location === `/api/scans/${id}`)).toBe(true);
    expect(api.logs.events('scan.queued', (e) => e.outcome === 'inflight')).toHaveLength(4);

    // Still queued: no report yet, and one job only.
    expect((await api.get(`/api/scans/${id}`)).json).toMatchObject({ id, status: 'queued', attempts: 0 });
    const early = await api.get(`/api/scans/${id}/report`);
    expect(early.status).toBe(409);
    expect(early.json.code).toBe('CONFLICT');
    expect(await totalJobs(api.service)).toBe(1);

    // Different options: a different job, even while the first is queued.
    const other = await api.post('/api/scans', { url, wcagVersion: '2.1' });
    expect(other.status).toBe(202);
    expect(other.json.id).not.toBe(id);
    expect(other.json.deduplicated).toBeUndefined();
    const counts = await jobCounts(api.service);
    expect(counts.waiting! + counts.prioritized!).toBe(2);
    expect(fixture.requestsTo('/dedup.html')).toHaveLength(0);

    const worker = await startTestService({ redisUrl: redis.url, prefix: api.prefix, api: false, worker: 1 });
    others.push(worker);
    const [a, b] = await Promise.all([api.finished(id), api.finished(other.json.id)]);
    expect(a).toMatchObject({ status: 'completed', attempts: 1 });
    expect(b).toMatchObject({ status: 'completed', options: { wcagVersion: '2.1' } });
    // One page load per job: the five requests cost one scan.
    expect(fixture.requestsTo('/dedup.html')).toHaveLength(2);
    expect(worker.logs.events('scan.start')).toHaveLength(2);
    // Once finished, the same request is a cache hit for the same id.
    expect((await api.post('/api/scans', { url })).json).toMatchObject({ id, cached: true });
  });
});
