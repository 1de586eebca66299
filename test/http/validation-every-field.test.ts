import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, totalJobs, type JsonResponse, type TestService } from '../support/service.js';

// A public address literal: passes the target policy without DNS, and nothing here is ever scanned.
const PUBLIC = 'http://93.184.215.14/';
const TOKEN = 'validation-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let redis: RedisServer;
let svc: TestService;

beforeAll(async () => {
  redis = await startRedisServer();
  // The production policy (private and loopback targets refused), one host let through by name.
  svc = await startTestService({ redisUrl: redis.url, settings: { ALLOW_PRIVATE_TARGETS: 'false', SCAN_ALLOWED_HOSTS: '10.1.2.3', MAX_BATCH_URLS: '3', ADMIN_TOKEN: TOKEN } });
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

/** A 400 problem+json with `code` whose errors name exactly `fields`, in that order. */
function expectFields(res: JsonResponse, fields: string[], code = 'VALIDATION_FAILED'): Array<{ field: string; message: string }> {
  expect(res.status, res.body).toBe(400);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.json).toMatchObject({ status: 400, code, type: `urn:wcagai:problem:${code.toLowerCase().replace(/_/g, '-')}` });
  expect(res.json.requestId).toBe(res.headers['x-request-id']);
  const errors = res.json.errors as Array<{ field: string; message: string }>;
  expect(errors.map((e) => e.field), JSON.stringify(errors)).toEqual(fields);
  for (const e of errors) expect(e.message.length).toBeGreaterThan(0);
  // Several are named in the detail too, for a client that only shows the detail.
  if (fields.length > 1) for (const field of fields) expect(res.json.detail).toContain(`${field}: `);
  return errors;
}

async function queueIsEmpty(): Promise<void> {
  expect(await totalJobs(svc.service)).toBe(0);
  const { redis: r, keys } = svc.service;
  expect(await r.keys(keys.inflight('*'))).toEqual([]);
  expect(await r.zcard(keys.admitting)).toBe(0);
}

describe('one 400 names every bad field, those the schema refuses and those checked after it', () => {
  it('POST /api/scans: a URL that is not one, with a bad priority', async () => {
    const errors = expectFields(await svc.post('/api/scans', { url: 'nope', priority: 'x' }), ['url', 'priority']);
    expect(errors[0]!.message).toMatch(/not a URL/);
    await queueIsEmpty();
  });

  it('POST /api/scans: scheme, private address and unknown rule ids, each with a schema error, in field order', async () => {
    const scheme = expectFields(await svc.post('/api/scans', { url: 'ftp://example.com/', wcagLevel: 'B' }), ['wcagLevel', 'url']);
    expect(scheme[1]!.message).toMatch(/ftp:/);
    const blocked = expectFields(await svc.post('/api/scans', { priority: 'urgent', url: 'http://169.254.169.254/latest/' }), ['url', 'priority']);
    expect(blocked[0]!.message).toMatch(/private or reserved/);
    expectFields(await svc.post('/api/scans', { url: 'http://localhost:8080/', viewport: { width: 10, height: 600 } }), ['viewport.width', 'url']);
    const rules = expectFields(await svc.post('/api/scans', { url: 'nope', rules: ['image-alt', 'no-such-rule'], disableRules: ['made-up'], bestPractice: 'yes' }), ['bestPractice', 'rules', 'disableRules', 'url']);
    expect(rules[1]!.message).toContain('no-such-rule');
    expect(rules[2]!.message).toContain('made-up');
    await queueIsEmpty();
  });

  it('POST /api/scans: a field the schema refuses is named once, and a URL left to DNS is not judged before it', async () => {
    // An empty URL fails the schema and is no URL either: named by the schema only.
    expectFields(await svc.post('/api/scans', { url: '', priority: 'x' }), ['url', 'priority']);
    // A malformed rule id is the schema's; the same list is not named again as unknown.
    expectFields(await svc.post('/api/scans', { url: 'nope', rules: ['Not A Rule'] }), ['rules[0]', 'url']);
    // Only DNS could tell about a host name: the schema's errors alone.
    expectFields(await svc.post('/api/scans', { url: 'https://wcagai.invalid/', priority: 'x' }), ['priority']);
    // A host SCAN_ALLOWED_HOSTS lets through is no error, schema or no schema.
    expectFields(await svc.post('/api/scans', { url: 'http://10.1.2.3/', priority: 'x' }), ['priority']);
    await queueIsEmpty();
  });

  it('POST /api/scans: several problems after a schema that passes are one VALIDATION_FAILED; a single one keeps its code', async () => {
    expectFields(await svc.post('/api/scans', { url: 'http://10.0.0.1/', rules: ['no-such-rule'], disableRules: ['made-up'] }), ['rules', 'disableRules', 'url']);
    expectFields(await svc.post('/api/scans', { url: 'http://10.0.0.1/' }), ['url'], 'BLOCKED_TARGET');
    expectFields(await svc.post('/api/scans', { url: PUBLIC, disableRules: ['made-up'] }), ['disableRules'], 'INVALID_OPTIONS');
    // disableRules skipping every rule that rules names is told beside a bad URL, in one answer.
    expectFields(await svc.post('/api/scans', { url: 'http://10.0.0.1/', rules: ['image-alt'], disableRules: ['image-alt'] }), ['disableRules', 'url']);
    await queueIsEmpty();
  });

  it('POST /api/batches: bad URLs, rule ids and shared options together', async () => {
    const errors = expectFields(await svc.post('/api/batches', { urls: ['nope', 'http://127.0.0.1/', 7], priority: 'x', rules: ['zz-rule'] }), ['rules', 'urls[0]', 'urls[1]', 'urls[2]', 'priority']);
    expect(errors[1]!.message).toMatch(/not a URL/);
    expect(errors[2]!.message).toMatch(/private or reserved/);
    expect(errors[3]!.message).toMatch(/string/);
    expectFields(await svc.post('/api/batches', { sitemap: 'ftp://example.com/sitemap.xml', limit: 0 }), ['sitemap', 'limit']);
    // Neither urls nor sitemap: named with the other errors, not only once they are fixed.
    expectFields(await svc.post('/api/batches', { priority: 'x' }), ['urls', 'priority']);
    expectFields(await svc.post('/api/batches', { urls: [PUBLIC], sitemap: 'nope' }), ['urls', 'sitemap']);
    // More URLs than MAX_BATCH_URLS, with a bad option.
    const many = expectFields(await svc.post('/api/batches', { urls: [PUBLIC, PUBLIC, PUBLIC, PUBLIC], wcagVersion: '3.0' }), ['wcagVersion', 'urls']);
    expect(many[1]!.message).toMatch(/at most 3 URLs/);
    // After a schema that passes: several bad URLs are one VALIDATION_FAILED, one keeps its code.
    expectFields(await svc.post('/api/batches', { urls: ['nope', PUBLIC, 'ftp://example.com/'] }), ['urls[0]', 'urls[2]']);
    expectFields(await svc.post('/api/batches', { urls: [PUBLIC, 'ftp://example.com/'] }), ['urls[1]'], 'UNSUPPORTED_SCHEME');
    await queueIsEmpty();
  });

  it('GET /admin/dlq/jobs and POST /admin/dlq/purge: the cursor and the duration with the schema errors', async () => {
    const list = expectFields(await svc.get('/admin/dlq/jobs?limit=abc&cursor=zz', AUTH), ['limit', 'cursor']);
    expect(list[1]!.message).toMatch(/not a cursor/);
    expectFields(await svc.get('/admin/dlq/jobs?cursor=zz&code=lower', AUTH), ['cursor', 'code']);
    expectFields(await svc.get('/admin/dlq/jobs?cursor=zz', AUTH), ['cursor']);
    expectFields(await svc.request({ method: 'POST', url: '/admin/dlq/purge?olderThan=soon&force=1', headers: AUTH }), ['olderThan', 'force']);
  });

  it('queues a valid request all the same, a host of SCAN_ALLOWED_HOSTS included', async () => {
    const res = await svc.post('/api/scans', { url: 'http://10.1.2.3/', rules: ['image-alt'] });
    expect(res.status, res.body).toBe(202);
    expect(await totalJobs(svc.service)).toBe(1);
  });
});
