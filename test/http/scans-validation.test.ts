import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, type JsonResponse, type TestService } from '../support/service.js';

// A public address literal: passes the target policy without DNS, and nothing here is ever scanned.
const PUBLIC = 'http://93.184.215.14/';

let redis: RedisServer;
let svc: TestService;

beforeAll(async () => {
  redis = await startRedisServer();
  // The production policy: private and loopback targets refused.
  svc = await startTestService({ redisUrl: redis.url, settings: { ALLOW_PRIVATE_TARGETS: 'false' } });
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

/** A problem+json answer with `status` and `code`, naming `field` when given. */
function expectProblem(res: JsonResponse, status: number, code: string, field?: string | RegExp): void {
  expect(res.status, res.body).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.json).toMatchObject({ status, code, type: `urn:wcagai:problem:${code.toLowerCase().replace(/_/g, '-')}` });
  expect(typeof res.json.title).toBe('string');
  expect(typeof res.json.detail).toBe('string');
  expect(res.json.requestId).toBe(res.headers['x-request-id']);
  if (field !== undefined) {
    const fields = (res.json.errors as Array<{ field: string; message: string }> | undefined)?.map((e) => e.field) ?? [];
    if (typeof field === 'string') expect(fields).toContain(field);
    else expect(fields.some((f) => field.test(f)), JSON.stringify(res.json.errors)).toBe(true);
  }
}

async function queueIsEmpty(): Promise<void> {
  expect(await totalJobs(svc.service)).toBe(0);
  const { redis: r, keys } = svc.service;
  expect(await r.keys(keys.inflight('*'))).toEqual([]);
  expect(await r.zcard(keys.admitting)).toBe(0);
}

describe('POST /api/scans refuses bad input with a 4xx problem naming the field, and queues nothing', () => {
  it('a value that is not a URL', async () => {
    expectProblem(await svc.post('/api/scans', { url: 'not a url' }), 400, 'INVALID_URL', 'url');
    expectProblem(await svc.post('/api/scans', { url: '' }), 400, 'VALIDATION_FAILED', 'url');
    expectProblem(await svc.post('/api/scans', { url: 42 }), 400, 'VALIDATION_FAILED', 'url');
    expectProblem(await svc.post('/api/scans', {}), 400, 'VALIDATION_FAILED', 'url');
    await queueIsEmpty();
  });

  it('a scheme other than http and https', async () => {
    const res = await svc.post('/api/scans', { url: 'ftp://example.com/file.html' });
    expectProblem(res, 400, 'UNSUPPORTED_SCHEME', 'url');
    expect(res.json.detail).toMatch(/ftp:/);
    expectProblem(await svc.post('/api/scans', { url: 'file:///etc/passwd' }), 400, 'UNSUPPORTED_SCHEME', 'url');
    await queueIsEmpty();
  });

  it('private, loopback and metadata addresses when ALLOW_PRIVATE_TARGETS is false', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://127.0.0.1/', 'http://localhost:8080/', 'http://10.0.0.1/', 'http://[::1]/', 'http://0x7f000001/']) {
      expectProblem(await svc.post('/api/scans', { url }), 400, 'BLOCKED_TARGET', 'url');
    }
    // Credentials in the URL are refused too (they can disguise the real host).
    expectProblem(await svc.post('/api/scans', { url: 'http://example.com@127.0.0.1/' }), 400, 'INVALID_URL', 'url');
    await queueIsEmpty();
  });

  it('credentials in a URL: refused without quoting them, in the answer or the log, for a scan and a batch', async () => {
    const password = 'Hunter2pw9x';
    const single = await svc.post('/api/scans', { url: `http://alice:${password}@93.184.215.14/page?token=tok3n` }, { 'x-request-id': 'cred-single' });
    expectProblem(single, 400, 'INVALID_URL', 'url');
    expect(single.json.detail).toContain('"http://[redacted]@93.184.215.14/page?token=[redacted]"');
    const several = await svc.post('/api/batches', { urls: [`http://bob:${password}@93.184.215.14/a`, PUBLIC, `http://carol:${password}@93.184.215.14/b`] }, { 'x-request-id': 'cred-batch' });
    expectProblem(several, 400, 'VALIDATION_FAILED', 'urls[0]');
    expect(several.json.errors.map((e: { field: string }) => e.field)).toEqual(['urls[0]', 'urls[2]']);
    const one = await svc.post('/api/batches', { urls: [PUBLIC, `http://dave:${password}@93.184.215.14/c`] }, { 'x-request-id': 'cred-batch-one' });
    expectProblem(one, 400, 'INVALID_URL', 'urls[1]');
    const unsupported = await svc.post('/api/scans', { url: `ftp://erin:${password}@93.184.215.14/f` }, { 'x-request-id': 'cred-ftp' });
    expectProblem(unsupported, 400, 'UNSUPPORTED_SCHEME', 'url');
    for (const res of [single, several, one, unsupported]) {
      expect(res.body).not.toContain(password);
      expect(res.body).not.toContain('tok3n');
    }
    const lines = svc.logs.entries.filter((e) => String(e.requestId).startsWith('cred-'));
    expect(lines.filter((e) => e.event === 'http.problem')).toHaveLength(4);
    const text = JSON.stringify(svc.logs.entries);
    expect(text).not.toContain(password);
    expect(text).not.toContain('tok3n');
    await queueIsEmpty();
  });

  it('an unknown wcagLevel, an unknown field, an unknown rule id, a bad viewport', async () => {
    expectProblem(await svc.post('/api/scans', { url: PUBLIC, wcagLevel: 'AAAA' }), 400, 'VALIDATION_FAILED', 'wcagLevel');
    const unknown = await svc.post('/api/scans', { url: PUBLIC, depth: 3 });
    expectProblem(unknown, 400, 'VALIDATION_FAILED', 'depth');
    expect(unknown.json.errors[0].message).toMatch(/unknown field/);
    const rule = await svc.post('/api/scans', { url: PUBLIC, rules: ['image-alt', 'no-such-rule'] });
    expectProblem(rule, 400, 'INVALID_OPTIONS', 'rules');
    expect(rule.json.detail).toContain('no-such-rule');
    // The item names its field once, as in a multi-field answer.
    expect(rule.json.errors).toEqual([{ field: 'rules', message: 'unknown axe rule id(s): no-such-rule' }]);
    expectProblem(await svc.post('/api/scans', { url: PUBLIC, disableRules: ['made-up'] }), 400, 'INVALID_OPTIONS', 'disableRules');
    expectProblem(await svc.post('/api/scans', { url: PUBLIC, viewport: { width: 50, height: 600 } }), 400, 'VALIDATION_FAILED', 'viewport.width');
    expectProblem(await svc.post('/api/scans', { url: PUBLIC, priority: 'urgent' }), 400, 'VALIDATION_FAILED', 'priority');
    await queueIsEmpty();
  });

  it('names unknown rule ids among other bad fields without repeating the field in the message', async () => {
    const res = await svc.post('/api/scans', { url: 'nope', rules: ['image-alt', 'no-such-rule'], disableRules: ['made-up'] });
    expectProblem(res, 400, 'VALIDATION_FAILED', 'rules');
    const errors = res.json.errors as Array<{ field: string; message: string }>;
    expect(errors.find((e) => e.field === 'rules')!.message).toBe('unknown axe rule id(s): no-such-rule');
    expect(errors.find((e) => e.field === 'disableRules')!.message).toBe('unknown axe rule id(s): made-up');
    expect(res.json.detail).toContain('rules: unknown axe rule id(s): no-such-rule;');
    expect(res.json.detail).not.toMatch(/rules: (disableR|r)ules:/);
    const batch = await svc.post('/api/batches', { urls: ['nope', PUBLIC], rules: ['zz-rule'] });
    expectProblem(batch, 400, 'VALIDATION_FAILED', 'rules');
    expect((batch.json.errors as Array<{ field: string; message: string }>).find((e) => e.field === 'rules')!.message).toBe('unknown axe rule id(s): zz-rule');
    await queueIsEmpty();
  });

  it('a body over 64 KiB (413), a body that is not JSON (415), malformed JSON (400)', async () => {
    const big = await svc.post('/api/scans', { url: PUBLIC, include: ['#x'.repeat(40_000)] });
    expectProblem(big, 413, 'PAYLOAD_TOO_LARGE');
    const text = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'text/plain' }, payload: PUBLIC });
    expectProblem(text, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const form = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `url=${PUBLIC}` });
    expectProblem(form, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const broken = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json' }, payload: '{"url": ' });
    expectProblem(broken, 400, 'BAD_REQUEST');
    await queueIsEmpty();
  });

  it('an unknown scan id (404) and a wrong method (405 with Allow)', async () => {
    expectProblem(await svc.get('/api/scans/scan_doesnotexist000'), 404, 'NOT_FOUND');
    expectProblem(await svc.get('/api/scans/not-a-scan-id'), 404, 'NOT_FOUND');
    expectProblem(await svc.get('/api/scans/scan_doesnotexist000/report?format=html'), 404, 'NOT_FOUND');

    for (const [method, url, allow] of [
      ['GET', '/api/scans', 'POST'],
      ['DELETE', '/api/scans', 'POST'],
      ['PUT', '/api/scan', 'POST'],
      ['POST', '/api/scans/scan_abc', 'GET, HEAD'],
      ['DELETE', '/api/scans/scan_abc/report', 'GET, HEAD'],
      ['GET', '/api/batches', 'POST'],
      ['PATCH', '/api/batches/batch_abc', 'GET, HEAD'],
    ] as const) {
      const res = await svc.request({ method, url });
      expectProblem(res, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers.allow, `${method} ${url}`).toBe(allow);
    }
    await queueIsEmpty();
  });

  it('queues a valid request all the same (the refusals above were about their input)', async () => {
    const res = await svc.post('/api/scans', { url: PUBLIC, wcagLevel: 'AAA', rules: ['image-alt'] });
    expect(res.status, res.body).toBe(202);
    expect(await totalJobs(svc.service)).toBe(1);
  });
});
