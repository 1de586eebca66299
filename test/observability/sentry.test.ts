import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WcagaiError } from '../../src/errors/catalogue.js';
import { errorReportingPlugin } from '../../src/http/plugins/sentry.js';
import { classifyHttpError, problem, sendProblem } from '../../src/http/problem.js';
import { runWithContext } from '../../src/observability/context.js';
import { type ErrorReporter, initErrorReporting, noopReporter } from '../../src/observability/sentry.js';
import { type Received, type SentryIngest, startSentryIngest } from '../support/sentry-ingest.js';

const silent = { info: () => undefined, warn: () => undefined };

let ingest: SentryIngest;
let dsn: string;
let received: Received[];

beforeAll(async () => {
  ingest = await startSentryIngest();
  dsn = ingest.dsn;
  received = ingest.received;
});

afterAll(async () => {
  await ingest.close();
});

beforeEach(() => {
  received.length = 0;
});

const events = () => ingest.events();

describe('initErrorReporting', () => {
  it('loads @sentry/node only lazily: no static import that `wcagai --help` would pay for', () => {
    const source = readFileSync(new URL('../../src/observability/sentry.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/^\s*(import|export)\s[^;]*from\s+['"]@sentry\//m);
    expect(source).toContain("await import('@sentry/node')");
  });

  it('is a no-op without a DSN', async () => {
    const reporter = await initErrorReporting({ logger: silent });
    expect(reporter).toBe(noopReporter);
    expect(reporter.enabled).toBe(false);
    reporter.capture(new Error('dropped'), { requestId: 'r' });
    expect(await reporter.flush(10)).toBe(true);
    expect(received).toEqual([]);
  });

  it('sends captured errors to the DSN tagged with request_id and job_id', async () => {
    const reporter = await initErrorReporting({ dsn, release: 'wcagai@0.1.0-test', environment: 'test', logger: silent });
    try {
      expect(reporter.enabled).toBe(true);
      reporter.capture(new WcagaiError('BROWSER_CRASHED', 'chromium went away'), { requestId: 'req_abc123', jobId: 'scan_42', tags: { worker: 'w1' } });
      expect(await reporter.flush(5_000)).toBe(true);
      expect(received.map((r) => r.path)).toEqual(['/api/1/envelope/']);
      expect(received[0]!.auth).toContain('publickey');
      const [event] = events();
      expect(event?.exception?.values?.[0]).toMatchObject({ type: 'WcagaiError', value: 'chromium went away' });
      expect(event?.exception?.values?.[0]?.stacktrace?.frames?.length).toBeGreaterThan(0);
      expect(event?.tags).toMatchObject({ request_id: 'req_abc123', job_id: 'scan_42', worker: 'w1' });
      expect(event).toMatchObject({ release: 'wcagai@0.1.0-test', environment: 'test' });
    } finally {
      await reporter.close(1_000);
    }
  });

  it('takes the ids from the current request or job context when not given, and keeps tags per event', async () => {
    const reporter = await initErrorReporting({ dsn, logger: silent });
    try {
      runWithContext({ requestId: 'req_ctx', jobId: 'job_ctx' }, () => reporter.capture(new Error('in context')));
      reporter.capture(new Error('outside'));
      expect(await reporter.flush(5_000)).toBe(true);
      const byMessage = new Map(events().map((e) => [e.exception?.values?.[0]?.value, e]));
      expect(byMessage.get('in context')?.tags).toMatchObject({ request_id: 'req_ctx', job_id: 'job_ctx' });
      // Tags of one capture must not leak into the next.
      expect(byMessage.get('outside')?.tags?.request_id).toBeUndefined();
    } finally {
      await reporter.close(1_000);
    }
  });

  it('sends an error quoting a URL with its credentials masked, its cause included, as the log writes it', async () => {
    const reporter = await initErrorReporting({ dsn, logger: silent });
    try {
      const cause = new Error('connect failed to redis://:redis-pw@cache.internal:6379/0');
      reporter.capture(new Error('fetch failed for https://ops:pw-in-url@api.example/v1?token=tok-in-query', { cause }));
      expect(await reporter.flush(5_000)).toBe(true);
      const values = events().flatMap((e) => e.exception?.values ?? []).map((v) => v.value);
      expect(values).toEqual(expect.arrayContaining(['fetch failed for https://[redacted]@api.example/v1?token=[redacted]', 'connect failed to redis://[redacted]@cache.internal:6379/0']));
      const sent = JSON.stringify(received);
      for (const secret of ['redis-pw', 'pw-in-url', 'tok-in-query']) expect(sent).not.toContain(secret);
    } finally {
      await reporter.close(1_000);
    }
  });
});

describe('trace context of events', () => {
  it('gives each event the trace id of its request, or a fresh one: never one id for every event of the process', async () => {
    const reporter = await initErrorReporting({ dsn, logger: silent });
    try {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      runWithContext({ requestId: 'req_traced', traceId }, () => reporter.capture(new Error('traced')));
      reporter.capture(new Error('first untraced'));
      reporter.capture(new Error('second untraced'));
      expect(await reporter.flush(5_000)).toBe(true);
      const byMessage = new Map(events().map((e) => [e.exception?.values?.[0]?.value, e]));
      const traceOf = (message: string) => byMessage.get(message)?.contexts?.trace?.trace_id;
      expect(traceOf('traced')).toBe(traceId);
      expect(byMessage.get('traced')?.tags).toMatchObject({ trace_id: traceId });
      const first = traceOf('first untraced');
      const second = traceOf('second untraced');
      expect(first).toMatch(/^[0-9a-f]{32}$/);
      expect(second).toMatch(/^[0-9a-f]{32}$/);
      expect(new Set([first, second, traceId]).size).toBe(3);
    } finally {
      await reporter.close(1_000);
    }
  });
});

describe('errorReportingPlugin', () => {
  let reporter: ErrorReporter;
  beforeAll(async () => {
    reporter = await initErrorReporting({ dsn, logger: silent });
  });
  afterAll(async () => {
    await reporter.close(1_000);
  });

  function buildApp() {
    const app = Fastify({ genReqId: (req) => String(req.headers['x-request-id'] ?? 'req_generated') });
    errorReportingPlugin(app, reporter);
    app.setErrorHandler((err, request, reply) => {
      const { code, detail, extra, headers } = classifyHttpError(err);
      return sendProblem(reply, problem(request, code, detail, extra), headers);
    });
    app.get('/v1/crash/:id', async () => {
      throw new Error('handler exploded');
    });
    app.get('/v1/redis', async (request, reply) => sendProblem(reply, problem(request, 'REDIS_UNAVAILABLE', 'redis down')));
    app.get('/v1/full', async () => {
      throw new WcagaiError('QUEUE_FULL', 'queue is full');
    });
    app.get('/v1/bad', async () => {
      throw new WcagaiError('INVALID_URL', 'not a url');
    });
    return app;
  }

  it('reports a 500 from a throwing route with the thrown error and the request id', async () => {
    const app = buildApp();
    try {
      const res = await app.inject({ method: 'GET', url: '/v1/crash/7', headers: { 'x-request-id': 'req_route500' } });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toMatchObject({ code: 'INTERNAL', requestId: 'req_route500' });
      expect(await reporter.flush(5_000)).toBe(true);
      const [event, ...rest] = events();
      expect(rest).toEqual([]);
      expect(event?.exception?.values?.[0]).toMatchObject({ type: 'Error', value: 'handler exploded' });
      expect(event?.tags).toMatchObject({ request_id: 'req_route500', route: '/v1/crash/:id', method: 'GET', status_code: '500', code: 'INTERNAL' });
    } finally {
      await app.close();
    }
  });

  it('reports 5xx problems sent without throwing, but not 4xx nor expected back-pressure 503s', async () => {
    const app = buildApp();
    try {
      expect((await app.inject({ method: 'GET', url: '/v1/bad' })).statusCode).toBe(400);
      expect((await app.inject({ method: 'GET', url: '/v1/full' })).statusCode).toBe(503);
      expect((await app.inject({ method: 'GET', url: '/v1/redis', headers: { 'x-request-id': 'req_redis' } })).statusCode).toBe(503);
      expect(await reporter.flush(5_000)).toBe(true);
      const all = events();
      expect(all).toHaveLength(1);
      expect(all[0]?.exception?.values?.[0]?.value).toBe('GET /v1/redis answered 503 REDIS_UNAVAILABLE');
      expect(all[0]?.tags).toMatchObject({ request_id: 'req_redis', code: 'REDIS_UNAVAILABLE', status_code: '503' });
    } finally {
      await app.close();
    }
  });
});
