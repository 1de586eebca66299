import { readFileSync } from 'node:fs';
import { Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WcagaiError } from '../../src/errors/catalogue.js';
import { metricsPlugin, scanEventsToMetrics } from '../../src/http/plugins/metrics.js';
import { classifyHttpError, problem, sendProblem } from '../../src/http/problem.js';
import { createMetrics, type Metrics, observeScan, type QueueCounts } from '../../src/observability/metrics.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format -> samples (enough of the format for prom-client's output). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** The same error and not-found handling as buildServer, so problem answers look real. */
function buildApp(metrics: Metrics, token?: string): FastifyInstance {
  const app = Fastify();
  metricsPlugin(app, metrics, token === undefined ? {} : { token });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problem(request, 'NOT_FOUND', 'no route')));
  app.setErrorHandler((err, request, reply) => {
    const { code, detail, extra, headers } = classifyHttpError(err);
    return sendProblem(reply, problem(request, code, detail, extra), headers);
  });
  app.get('/v1/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.get('/v1/full', async () => {
    throw new WcagaiError('QUEUE_FULL', 'queue is full', { details: { retryAfterSeconds: 5 } });
  });
  app.get('/v1/crash', async () => {
    throw new Error('boom');
  });
  app.get('/v1/teapot', async (_request, reply) => reply.code(418).send({ plain: true }));
  return app;
}

async function scrape(app: FastifyInstance, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers });
  expect(res.statusCode).toBe(200);
  return parseExposition(res.body);
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
function track(app: FastifyInstance): FastifyInstance {
  apps.push(app);
  return app;
}

describe('metricsPlugin', () => {
  it('counts requests per route template, method and status, and observes their duration', async () => {
    const app = track(buildApp(createMetrics({ defaultMetrics: false })));
    for (const id of ['a', 'b', 'c']) expect((await app.inject({ method: 'GET', url: `/v1/items/${id}` })).statusCode).toBe(200);
    await app.inject({ method: 'GET', url: '/nowhere/at/all' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parseExposition(res.body);

    const route = { route: '/v1/items/:id', method: 'GET', status_code: '200' };
    expect(value(s, 'wcagai_http_requests_total', route)).toBe(3);
    expect(value(s, 'wcagai_http_request_duration_seconds_count', route)).toBe(3);
    expect(value(s, 'wcagai_http_request_duration_seconds_bucket', { ...route, le: '+Inf' })).toBe(3);
    expect(value(s, 'wcagai_http_request_duration_seconds_bucket', { ...route, le: '120' })).toBe(3);
    expect(value(s, 'wcagai_http_request_duration_seconds_sum', route)).toBeGreaterThan(0);
    // Unmatched paths share one label value: probes cannot blow up cardinality.
    expect(value(s, 'wcagai_http_requests_total', { route: 'unmatched', status_code: '404' })).toBe(1);
    expect(s.some((x) => x.labels.route === '/nowhere/at/all')).toBe(false);
  });

  it('counts error answers by problem code, including thrown errors and the not-found handler', async () => {
    const app = track(buildApp(createMetrics({ defaultMetrics: false })));
    await app.inject({ method: 'GET', url: '/v1/full' });
    await app.inject({ method: 'GET', url: '/v1/full' });
    await app.inject({ method: 'GET', url: '/v1/crash' });
    await app.inject({ method: 'GET', url: '/missing' });
    await app.inject({ method: 'GET', url: '/v1/teapot' });
    const s = await scrape(app);
    expect(value(s, 'wcagai_http_errors_total', { code: 'QUEUE_FULL', status_code: '503' })).toBe(2);
    expect(value(s, 'wcagai_http_errors_total', { code: 'INTERNAL', status_code: '500' })).toBe(1);
    expect(value(s, 'wcagai_http_errors_total', { code: 'NOT_FOUND', status_code: '404' })).toBe(1);
    // A plain JSON error answer is still an error answer, just without a problem code.
    expect(value(s, 'wcagai_http_errors_total', { code: 'UNCODED', status_code: '418' })).toBe(1);
    expect(value(s, 'wcagai_http_requests_total', { route: '/v1/full', method: 'GET', status_code: '503' })).toBe(2);
  });

  it('protects /metrics with the bearer token: 401 problem without or with a wrong one, 200 with the right one', async () => {
    const token = 'metrics-secret-0123456789';
    const app = track(buildApp(createMetrics({ defaultMetrics: false }), token));
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${token}x` }, { authorization: token }, { authorization: `Basic ${token}` }]) {
      const res = await app.inject({ method: 'GET', url: '/metrics', headers });
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      expect(res.json()).toMatchObject({ status: 401, code: 'UNAUTHORIZED', instance: '/metrics' });
      expect(res.body).not.toContain(token);
    }
    const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `bearer ${token}` } });
    expect(ok.statusCode).toBe(200);
    // The rejected scrapes were counted like any other problem answer.
    expect(value(parseExposition(ok.body), 'wcagai_http_errors_total', { code: 'UNAUTHORIZED', status_code: '401' })).toBe(5);
  });

  it('still answers scrapes while under-pressure turns other requests away', async () => {
    const app = track(buildApp(createMetrics({ defaultMetrics: false })));
    await app.register(underPressure, {
      healthCheck: async () => false,
      healthCheckInterval: 60_000,
      pressureHandler: (request, reply) => {
        void sendProblem(reply, problem(request, 'OVERLOADED', 'under pressure'));
      },
    });
    await app.ready();
    await new Promise((r) => setTimeout(r, 50));
    expect((await app.inject({ method: 'GET', url: '/v1/items/1' })).statusCode).toBe(503);
    const s = await scrape(app);
    expect(value(s, 'wcagai_http_requests_total', { route: '/v1/items/:id', status_code: '503' })).toBe(1);
    expect(value(s, 'wcagai_http_errors_total', { code: 'OVERLOADED', status_code: '503' })).toBe(1);
  });

  it('exposes the Node.js default metrics under their standard names', async () => {
    const app = track(buildApp(createMetrics()));
    const names = new Set((await scrape(app)).map((x) => x.name));
    for (const name of ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'process_cpu_seconds_total']) {
      expect(names, name).toContain(name);
    }
    const metadata = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metadata).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
  });

  it('keeps separate registries per instance (two servers in one process do not collide)', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.httpRequests.inc({ route: '/x', method: 'GET', status_code: '200' });
    expect(await b.registry.getSingleMetricAsString('wcagai_http_requests_total')).not.toContain('route="/x"');
  });
});

describe('queue gauge', () => {
  it('reads queueCounts at scrape time', async () => {
    let counts: QueueCounts = { waiting: 4, active: 2, delayed: 1, failed: 7, completed: 30 };
    const app = track(buildApp(createMetrics({ defaultMetrics: false, queueCounts: async () => counts })));
    let s = await scrape(app);
    expect(value(s, 'wcagai_queue_jobs', { state: 'waiting' })).toBe(4);
    expect(value(s, 'wcagai_queue_jobs', { state: 'active' })).toBe(2);
    expect(value(s, 'wcagai_queue_jobs', { state: 'delayed' })).toBe(1);
    expect(value(s, 'wcagai_queue_jobs', { state: 'failed' })).toBe(7);
    expect(value(s, 'wcagai_queue_jobs', { state: 'completed' })).toBe(30);
    counts = { waiting: 0, active: 1, delayed: 0, failed: 7, completed: 33 };
    s = await scrape(app);
    expect(value(s, 'wcagai_queue_jobs', { state: 'waiting' })).toBe(0);
    expect(value(s, 'wcagai_queue_jobs', { state: 'completed' })).toBe(33);
  });

  it('a failing or hanging queueCounts leaves the previous values and the scrape still answers', async () => {
    let mode: 'ok' | 'throw' | 'hang' = 'ok';
    const queueCounts = async (signal: AbortSignal): Promise<QueueCounts> => {
      if (mode === 'throw') throw new Error('redis down');
      if (mode === 'hang') return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      return { waiting: 5, active: 3 };
    };
    const metrics = createMetrics({ defaultMetrics: false, queueCounts, queueCountsTimeoutMs: 200 });
    const app = track(buildApp(metrics));
    expect(value(await scrape(app), 'wcagai_queue_jobs', { state: 'waiting' })).toBe(5);
    mode = 'throw';
    let s = await scrape(app);
    expect(value(s, 'wcagai_queue_jobs', { state: 'waiting' })).toBe(5);
    expect(value(s, 'wcagai_queue_jobs', { state: 'active' })).toBe(3);
    expect(s.some((x) => x.name === 'wcagai_http_requests_total')).toBe(true);
    mode = 'hang';
    const started = Date.now();
    s = await scrape(app);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(value(s, 'wcagai_queue_jobs', { state: 'waiting' })).toBe(5);
  });
});

describe('scan metrics', () => {
  it('observeScan counts the outcome and observes each phase in seconds', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    observeScan(metrics, { navigationMs: 1200, settleMs: 300, axeMs: 450, totalMs: 2000 }, 'completed');
    observeScan(metrics, undefined, 'cached');
    observeScan(metrics, undefined, 'deduplicated');
    const s = parseExposition(await metrics.registry.metrics());
    expect(value(s, 'wcagai_scans_total', { outcome: 'completed' })).toBe(1);
    expect(value(s, 'wcagai_scans_total', { outcome: 'cached' })).toBe(1);
    expect(value(s, 'wcagai_scans_total', { outcome: 'deduplicated' })).toBe(1);
    expect(value(s, 'wcagai_scan_duration_seconds_sum', { phase: 'navigation' })).toBeCloseTo(1.2);
    expect(value(s, 'wcagai_scan_duration_seconds_sum', { phase: 'total' })).toBeCloseTo(2);
    expect(value(s, 'wcagai_scan_duration_seconds_bucket', { phase: 'total', le: '1' })).toBe(0);
    expect(value(s, 'wcagai_scan_duration_seconds_bucket', { phase: 'total', le: '2' })).toBe(1);
    expect(value(s, 'wcagai_scan_duration_seconds_bucket', { phase: 'axe', le: '0.05' })).toBe(0);
    expect(value(s, 'wcagai_scan_duration_seconds_bucket', { phase: 'axe', le: '60' })).toBe(1);
  });

  describe('scanEventsToMetrics (real Redis and BullMQ)', () => {
    let redis: RedisServer;
    const connections: Redis[] = [];
    const conn = () => {
      const c = new Redis(redis.url, { maxRetriesPerRequest: null });
      connections.push(c);
      return c;
    };
    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterAll(async () => {
      for (const c of connections) c.disconnect();
      await redis?.close();
    });

    it('counts completed scans with their phase timings and final failures (not retries)', async () => {
      const name = `metrics-${process.pid}-${Date.now()}`;
      const prefix = '{wcagai-test}';
      const metrics = createMetrics({ defaultMetrics: false });
      const events = new QueueEvents(name, { connection: conn(), prefix });
      await events.waitUntilReady();
      const dispose = scanEventsToMetrics(events, metrics);
      const queue = new Queue(name, { connection: conn(), prefix });
      const worker = new Worker(
        name,
        async (job) => {
          if (job.data.mode === 'retry-then-ok' && job.attemptsMade === 0) throw new Error('HTTP_SERVER_ERROR: try again');
          if (job.data.mode === 'fail') throw new UnrecoverableError('NAVIGATION_TIMEOUT: too slow');
          if (job.data.mode === 'legacy') return { status: 'completed', violations: 0 };
          return { status: 'completed', violations: 2, timings: { navigationMs: 800, settleMs: 100, axeMs: 300, totalMs: 1250 } };
        },
        { connection: conn(), prefix },
      );
      try {
        const finished = new Promise<void>((resolve) => {
          let n = 0;
          const done = () => ++n === 4 && resolve();
          events.on('completed', done);
          events.on('failed', done);
        });
        await queue.add('scan', { mode: 'ok' });
        await queue.add('scan', { mode: 'retry-then-ok' }, { attempts: 2, backoff: { type: 'fixed', delay: 10 } });
        await queue.add('scan', { mode: 'fail' }, { attempts: 3 });
        await queue.add('scan', { mode: 'legacy' });
        await finished;
        const s = parseExposition(await metrics.registry.metrics());
        expect(value(s, 'wcagai_scans_total', { outcome: 'completed' })).toBe(3);
        expect(value(s, 'wcagai_scans_total', { outcome: 'failed' })).toBe(1);
        // The return value without timings (older workers) still counts, without phase samples.
        expect(value(s, 'wcagai_scan_duration_seconds_count', { phase: 'total' })).toBe(2);
        expect(value(s, 'wcagai_scan_duration_seconds_sum', { phase: 'navigation' })).toBeCloseTo(1.6);
        dispose();
        await queue.add('scan', { mode: 'ok' });
        await new Promise<void>((resolve) => events.once('completed', () => resolve()));
        expect(value(parseExposition(await metrics.registry.metrics()), 'wcagai_scans_total', { outcome: 'completed' })).toBe(3);
      } finally {
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
        await events.close();
      }
    });

    it('parses a returnvalue that arrives as a JSON string, and ignores garbage', () => {
      const metrics = createMetrics({ defaultMetrics: false });
      const listeners = new Map<string, (args: { returnvalue: unknown }) => void>();
      const fake = { on: (e: string, l: (args: { returnvalue: unknown }) => void) => listeners.set(e, l), off: () => undefined } as unknown as QueueEvents;
      scanEventsToMetrics(fake, metrics);
      listeners.get('completed')!({ returnvalue: JSON.stringify({ status: 'completed', timings: { navigationMs: 50, settleMs: 'x', axeMs: 20, totalMs: 90 } }) });
      listeners.get('completed')!({ returnvalue: '{not json' });
      listeners.get('completed')!({ returnvalue: null });
      return metrics.registry.metrics().then((text) => {
        const s = parseExposition(text);
        expect(value(s, 'wcagai_scans_total', { outcome: 'completed' })).toBe(3);
        expect(value(s, 'wcagai_scan_duration_seconds_count', { phase: 'navigation' })).toBe(1);
        expect(value(s, 'wcagai_scan_duration_seconds_count', { phase: 'settle' })).toBeUndefined();
      });
    });
  });
});

describe('grafana dashboard', () => {
  const text = readFileSync(new URL('../../src/observability/grafana-dashboard.json', import.meta.url), 'utf8');

  it('is a schemaVersion 39 dashboard with a DS_PROMETHEUS input used by every panel', () => {
    const dash = JSON.parse(text) as { schemaVersion: number; __inputs: Array<{ name: string }>; panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ expr: string }> }> };
    expect(dash.schemaVersion).toBe(39);
    expect(dash.__inputs.map((i) => i.name)).toContain('DS_PROMETHEUS');
    for (const p of dash.panels) {
      expect(p.datasource.uid, p.title).toBe('${DS_PROMETHEUS}');
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    const titles = dash.panels.map((p) => p.title.toLowerCase()).join('|');
    for (const t of ['error rate', 'p95 latency by route', 'queue depth', 'breakers open', 'scan p95 by phase', 'scans per minute', 'dlq size', 'alerts firing', 'rss and heap', 'event-loop lag']) {
      expect(titles).toContain(t);
    }
  });

  it('combines what every API process counts for the whole fleet (DLQ captures, queue, finished scans) with max, never sum', () => {
    const dash = JSON.parse(text) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const captures = dash.panels.find((p) => p.title === 'DLQ captures per minute by code')!;
    expect(captures.targets.map((t) => t.expr)).toEqual(['max by (code) (rate(wcagai_dlq_captured_total[$__rate_interval])) * 60']);
    const fleetWide = exprs.filter((e) => /wcagai_(dlq_captured_total|dlq_size|queue_jobs)\b|outcome=~"completed\|failed"/.test(e));
    expect(fleetWide.length).toBeGreaterThanOrEqual(4);
    for (const e of fleetWide) expect(e).not.toMatch(/\bsum\b/);
  });

  it('counts each service whose breaker is open or isolated once, in API and worker processes alike, however many report it', () => {
    const dash = JSON.parse(text) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const open = dash.panels.find((p) => p.title === 'Circuit breakers open')!;
    // 2 open, 3 isolated (BREAKER_STATE): both refuse calls.
    expect(open.targets.map((t) => t.expr)).toEqual(['count(max by (service) (wcagai_circuit_breaker_state or wcagai_worker_circuit_breaker_state) >= 2) or vector(0)']);
  });

  it('queries only metrics that the registry exposes', async () => {
    const dash = JSON.parse(text) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const queried = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(?:wcagai|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
    const registered = new Set((await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name));
    expect(queried.size).toBeGreaterThan(10);
    expect([...queried].filter((n) => !registered.has(n))).toEqual([]);
  });
});
