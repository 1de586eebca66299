import { Queue, QueueEvents } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyOf } from '../../src/app/scanner-config.js';
import { loadConfig } from '../../src/config/load.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { keysFor } from '../../src/queue/keys.js';
import { ScanProducer } from '../../src/queue/producer.js';
import { producerConnection, toRedisError, waitReady, workerConnection } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { CompletionWaiter } from '../../src/queue/waiter.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, LogSink, startTestService, TEST_SETTINGS, totalJobs, uniquePrefix, waitFor, type JsonResponse, type TestService } from '../support/service.js';

let redis: RedisServer;
const services: TestService[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await Promise.allSettled(services.map((s) => s.close()));
  await redis?.close();
});

async function service(settings: Record<string, string> = {}): Promise<TestService> {
  const svc = await startTestService({ redisUrl: redis.url, settings });
  services.push(svc);
  return svc;
}

const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

/** Every problem answer: RFC 9457 members plus code, requestId and timestamp, and the security headers. */
function expectProblem(res: JsonResponse, status: number, code: string, instance: string): Record<string, any> {
  expect(res.status, res.body).toBe(status);
  expect(res.headers['content-type']).toBe(PROBLEM_TYPE);
  const body = res.json;
  expect(body).toMatchObject({ status, code, instance, type: `urn:wcagai:problem:${code.toLowerCase().replace(/_/g, '-')}` });
  expect(() => new URL(body.type)).not.toThrow();
  expect(typeof body.title).toBe('string');
  expect(body.title.length).toBeGreaterThan(0);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expect(body.requestId).toBe(res.headers['x-request-id']);
  expect(body.requestId).toMatch(/^req_[A-Za-z0-9_-]+$/);
  expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
  expect(Math.abs(Date.now() - Date.parse(body.timestamp))).toBeLessThan(60_000);
  expect(res.body).not.toMatch(/\bat .+\.(js|ts):\d+/);
  expectSecurityHeaders(res);
  return body;
}

function expectSecurityHeaders(res: JsonResponse): void {
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(String(res.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
  expect(res.headers['referrer-policy']).toBe('no-referrer');
}

describe('problem+json for every error status', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await service({ MAX_QUEUE_DEPTH: '2' });
  });

  it('400 validation names every bad field', async () => {
    const res = await svc.post('/api/scans', { url: 42, priority: 'urgent', wcagLevel: 'B' });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED', '/api/scans');
    const fields = (body.errors as Array<{ field: string; message: string }>).map((e) => e.field).sort();
    expect(fields).toEqual(['priority', 'url', 'wcagLevel']);
    for (const e of body.errors) expect(e.message.length).toBeGreaterThan(0);
  });

  it('400 for a body that is not JSON', async () => {
    const res = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': 'application/json' }, payload: '{"url": ' });
    expectProblem(res, 400, 'BAD_REQUEST', '/api/scans');
  });

  it('404 for an unknown route, without the query string in instance', async () => {
    const res = await svc.get('/api/nothing-here?token=abc');
    const body = expectProblem(res, 404, 'NOT_FOUND', '/api/nothing-here');
    expect(res.body).not.toContain('token=abc');
    expect(body.detail).toContain('/api/nothing-here');
  });

  it('404 for a scan that does not exist', async () => {
    expectProblem(await svc.get('/api/scans/scan_doesnotexist'), 404, 'NOT_FOUND', '/api/scans/scan_doesnotexist');
  });

  it('404 for admin routes when ADMIN_TOKEN is not configured, even with a token', async () => {
    for (const headers of [{}, { authorization: 'Bearer some-token-that-is-long-enough' }]) {
      const res = await svc.request({ method: 'POST', url: '/admin/queue/pause', headers });
      const body = expectProblem(res, 404, 'NOT_FOUND', '/admin/queue/pause');
      expect(body.detail).toMatch(/disabled/);
    }
    expect(await svc.service.queue.isPaused()).toBe(false);
  });

  it('405 with Allow', async () => {
    const res = await svc.request({ method: 'DELETE', url: '/api/scans' });
    expectProblem(res, 405, 'METHOD_NOT_ALLOWED', '/api/scans');
    expect(res.headers.allow).toBe('POST');
    const health = await svc.request({ method: 'POST', url: '/health/live' });
    expectProblem(health, 405, 'METHOD_NOT_ALLOWED', '/health/live');
    expect(String(health.headers.allow).split(/,\s*/).sort()).toEqual(['GET', 'HEAD']);
  });

  it('405 with Allow on /metrics too, not a 404 as if it did not exist', async () => {
    for (const method of ['POST', 'DELETE'] as const) {
      const res = await svc.request({ method, url: '/metrics' });
      expectProblem(res, 405, 'METHOD_NOT_ALLOWED', '/metrics');
      expect(String(res.headers.allow).split(/,\s*/).sort()).toEqual(['GET', 'HEAD']);
    }
    expect((await svc.get('/metrics')).status).toBe(200);
  });

  it('413 for a body over the limit', async () => {
    const res = await svc.post('/api/scans', { url: `http://127.0.0.1/${'a'.repeat(70_000)}` });
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE', '/api/scans');
  });

  it('415 for a media type other than JSON', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await svc.request({ method: 'POST', url: '/api/scans', headers: { 'content-type': type }, payload: 'url=http://127.0.0.1/' });
      expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE', '/api/scans');
    }
  });

  it('503 queue full with Retry-After, and nothing enqueued', async () => {
    for (const n of [1, 2]) expect((await svc.post('/api/scans', { url: `http://127.0.0.1:9/full-${n}` })).status).toBe(202);
    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/full-3' });
    expectProblem(res, 503, 'QUEUE_FULL', '/api/scans');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(await totalJobs(svc.service)).toBe(2);
  });

  it('security headers on successful answers too', async () => {
    for (const url of ['/health', '/health/live', '/health/ready', '/metrics']) {
      const res = await svc.get(url);
      expect(res.status, `${url}: ${res.body}`).toBe(200);
      expectSecurityHeaders(res);
      expect(res.headers['x-request-id']).toMatch(/^req_/);
    }
    const accepted = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/headers' }, {});
    expectSecurityHeaders(accepted);
  });
});

describe('requests the router refuses (no route, so no hook runs)', () => {
  it('a bad %-escape (400) and an over-long id (404): problem, security headers, metrics and the completion line', async () => {
    const svc = await service();
    const badEscape = await svc.get('/api/scans/%E0%A4%A?token=abc', { 'x-request-id': 'req_fwescape' });
    expectProblem(badEscape, 400, 'BAD_REQUEST', '/api/scans/%E0%A4%A');
    const longId = `/api/scans/scan_${'a'.repeat(300)}`;
    const overLong = await svc.get(longId, { 'x-request-id': 'req_fwlong' });
    expectProblem(overLong, 404, 'NOT_FOUND', longId);
    for (const [id, status] of [['req_fwescape', 400], ['req_fwlong', 404]] as const) {
      const lines = await waitFor(() => {
        const mine = svc.logs.entries.filter((e) => e.requestId === id);
        return mine.some((e) => e.msg === 'request completed') ? mine : undefined;
      }, { what: `the completion line of ${id}` });
      expect(lines.map((e) => e.msg)).toEqual(['incoming request', 'request completed']);
      expect(lines[1]).toMatchObject({ res: { statusCode: status } });
      expect(typeof lines[1]!.responseTime).toBe('number');
    }
    expect(JSON.stringify(svc.logs.entries)).not.toContain('token=abc');
    const metrics = (await svc.get('/metrics')).body;
    expect(metrics).toMatch(/^wcagai_http_requests_total\{route="unmatched",method="GET",status_code="400"\} 1$/m);
    expect(metrics).toMatch(/^wcagai_http_requests_total\{route="unmatched",method="GET",status_code="404"\} 1$/m);
    expect(metrics).toMatch(/^wcagai_http_errors_total\{code="BAD_REQUEST",status_code="400"\} 1$/m);
    expect(metrics).toMatch(/^wcagai_http_errors_total\{code="NOT_FOUND",status_code="404"\} 1$/m);
    expect(metrics).toMatch(/^wcagai_http_request_duration_seconds_count\{route="unmatched",method="GET",status_code="400"\} 1$/m);
  });
});

describe('429 and 401 problems', () => {
  it('429 names the configured window, not the time left in it', async () => {
    // The window as the plugin would word the time left: 90 s left reads "2 minutes", never "90 seconds".
    const svc = await service({ RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW: '90s' });
    expect((await svc.get('/api/scans/scan_none')).status).toBe(404);
    const res = await svc.get('/api/scans/scan_none');
    const body = expectProblem(res, 429, 'RATE_LIMITED', '/api/scans/scan_none');
    expect(body.detail).toMatch(/^rate limit of 1 requests per 90 seconds exceeded; retry in \d+ s$/);
  });

  it('429 with Retry-After once the limit is spent', async () => {
    const svc = await service({ RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' });
    for (let i = 0; i < 2; i++) expect((await svc.get('/api/scans/scan_none')).status).toBe(404);
    const res = await svc.get('/api/scans/scan_none');
    const body = expectProblem(res, 429, 'RATE_LIMITED', '/api/scans/scan_none');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(body.detail).toMatch(/rate limit/);
  });

  it('401 with WWW-Authenticate', async () => {
    const svc = await service({ API_KEYS: 'k-one-123456,k-two-123456' });
    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/x' });
    expectProblem(res, 401, 'UNAUTHORIZED', '/api/scans');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });
});

describe('503 under pressure', () => {
  it('refuses API requests with Retry-After but still serves /metrics, and runs no handler', async () => {
    const svc = await service({ MAX_HEAP_MB: '1' });
    // under-pressure samples memory once a second; probe with a read so nothing is enqueued before.
    await waitFor(async () => (await svc.get('/api/scans/scan_probe')).status === 503, { timeoutMs: 5_000, intervalMs: 200, what: 'pressure to be detected' });
    const res = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/pressure' });
    const body = expectProblem(res, 503, 'OVERLOADED', '/api/scans');
    expect(body.detail).toMatch(/pressure/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    // A 503 means the request was not served: no scan may have been enqueued behind the answer.
    await new Promise((r) => setTimeout(r, 300));
    const sinceDetected = (await svc.post('/api/scans', { url: 'http://127.0.0.1:9/pressure-2' })).status;
    expect(sinceDetected).toBe(503);
    await new Promise((r) => setTimeout(r, 300));
    expect(svc.logs.events('scan.queued', (e) => String(e.url).includes('pressure'))).toEqual([]);
    expect(svc.logs.entries.filter((e) => /already sent/i.test(String(e.msg)))).toEqual([]);
    expect(await totalJobs(svc.service)).toBe(0);
    expectProblem(await svc.get('/health'), 503, 'OVERLOADED', '/health');
    const metrics = await svc.get('/metrics');
    expect(metrics.status).toBe(200);
    // The refusals are counted under their problem code.
    expect(metrics.body).toMatch(/^wcagai_http_errors_total\{[^}]*code="OVERLOADED"[^}]*\} [1-9]/m);
  });

  it('keeps /health/live at 200: a busy process is alive, not one to restart', async () => {
    const svc = await service({ MAX_HEAP_MB: '1' });
    await waitFor(async () => (await svc.get('/api/scans/scan_probe')).status === 503, { timeoutMs: 5_000, intervalMs: 200, what: 'pressure to be detected' });
    const live = await svc.get('/health/live');
    expect(live.status, live.body).toBe(200);
    expect(live.json).toMatchObject({ status: 'ok' });
    // Still under pressure: the API and readiness (take it out of rotation) keep refusing.
    expectProblem(await svc.get('/api/scans/scan_probe'), 503, 'OVERLOADED', '/api/scans/scan_probe');
    expectProblem(await svc.get('/health/ready'), 503, 'OVERLOADED', '/health/ready');
  });
});

describe('500', () => {
  let app: FastifyInstance;
  let conn: Redis;
  let queue: Queue;
  let waiter: CompletionWaiter;
  let events: QueueEvents;
  let eventsConn: ReturnType<typeof workerConnection>;
  const logs = new LogSink();

  beforeAll(async () => {
    const config = loadConfig(baseEnv(), { ...TEST_SETTINGS, REDIS_URL: redis.url, QUEUE_PREFIX: uniquePrefix('p500') });
    const logger = createLogger({ level: 'info', destination: logs });
    const keys = keysFor(config.QUEUE_PREFIX);
    conn = producerConnection(config.REDIS_URL);
    await waitReady(conn);
    queue = new Queue(keys.queueName, { connection: conn, prefix: keys.bullPrefix });
    const store = new ResultStore(conn, keys, config.RESULT_TTL, config.CACHE_TTL);
    const producer = new ScanProducer(queue, conn, keys, store, { attempts: 1, backoffMs: 100, maxQueueDepth: 10, inflightTtlMs: 60_000 });
    // The waiter listens on a stream it does not own (as serve gives it the DLQ capture's).
    eventsConn = workerConnection(config.REDIS_URL).on('error', () => undefined);
    events = new QueueEvents(keys.queueName, { connection: eventsConn, prefix: keys.bullPrefix });
    waiter = new CompletionWaiter(events);
    await waiter.ready();
    app = await buildServer({
      config,
      logger,
      redis: conn,
      keys,
      producer,
      store,
      waiter,
      policy: policyOf(config),
      toRedisError,
      extend: [
        (a) => {
          a.get('/api/boom', async () => {
            throw new Error('secret internal detail at /srv/x.js');
          });
          a.get('/api/boom-async', () => Promise.reject(new TypeError('cannot read properties of undefined (reading "secretField")')));
        },
      ],
    });
  });

  afterAll(async () => {
    await app?.close();
    await waiter?.close();
    await events?.close();
    eventsConn?.disconnect();
    await queue?.close();
    conn?.disconnect();
  });

  it('answers a problem without the stack or the internal message; the log has both', async () => {
    for (const [url, secret] of [
      ['/api/boom', 'secret internal detail'],
      ['/api/boom-async', 'secretField'],
    ] as const) {
      const raw = await app.inject({ method: 'GET', url, headers: { 'x-request-id': `boom-${url.length}` } });
      const res: JsonResponse = { status: raw.statusCode, headers: raw.headers, body: raw.body, json: JSON.parse(raw.body), ms: 0 };
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toBe(PROBLEM_TYPE);
      expect(res.json).toMatchObject({ status: 500, code: 'INTERNAL', instance: url, requestId: `boom-${url.length}`, type: 'urn:wcagai:problem:internal' });
      expect(Object.keys(res.json).sort()).toEqual(['code', 'detail', 'instance', 'requestId', 'status', 'timestamp', 'title', 'type']);
      expect(res.body).not.toContain(secret);
      expect(res.body).not.toContain('/srv/x.js');
      expect(res.body).not.toMatch(/stack|\.js:\d+/);
      expectSecurityHeaders(res);
      const logged = logs.events('http.error', (e) => e.requestId === `boom-${url.length}`);
      expect(logged).toHaveLength(1);
      const err = logged[0]!.err as { message: string; stack: string };
      expect(err.message).toContain(secret);
      expect(err.stack).toMatch(/\n\s+at /);
    }
  });
});
