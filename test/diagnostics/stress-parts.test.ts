import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../../src/diagnostics/scenario.js';
import { runStress } from '../../src/diagnostics/stress.js';
import { StressCollector } from '../../src/diagnostics/stress-collector.js';
import { WeightedRotation } from '../../src/diagnostics/stress-load.js';
import { awaitRecovery, readHealth, type HealthSample } from '../../src/diagnostics/stress-monitor.js';

describe('WeightedRotation', () => {
  it('is proportional over every window of one period and skips zero weights', () => {
    const r = new WeightedRotation([
      ['scan', 3],
      ['enqueue', 1],
      ['health', 0],
    ] as const);
    const picks = Array.from({ length: 8 }, () => r.next());
    expect(picks.filter((p) => p === 'scan')).toHaveLength(6);
    expect(picks.filter((p) => p === 'enqueue')).toHaveLength(2);
    expect(picks).not.toContain('health');
    expect(() => new WeightedRotation([['x', 0]])).toThrow(RangeError);
  });
});

describe('StressCollector', () => {
  const view = (over: Record<string, unknown>) => JSON.stringify({ id: 'scan_a', status: 'completed', createdAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:02.500Z', ...over });

  it('keeps admission rejections apart from failures and counts socket errors and timeouts as failures', () => {
    const c = new StressCollector();
    c.onResponse({ kind: 'enqueue', status: 202, body: JSON.stringify({ id: 'scan_1', status: 'queued' }), headers: {}, clientMs: 5 });
    c.onResponse({ kind: 'enqueue', status: 503, body: '{}', headers: { 'Retry-After': '5' }, clientMs: 5 });
    c.onResponse({ kind: 'enqueue', status: 503, body: '{"code":"X"}', headers: {}, clientMs: 5 });
    c.onResponse({ kind: 'status', status: 404, body: 'no scan', headers: {}, clientMs: 5 });
    c.onError(new Error('request timed out'));
    c.onError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(c.attempts).toBe(6);
    expect(c.rejected).toBe(1);
    expect(c.httpFailures).toBe(2);
    expect(c.timeouts).toBe(1);
    expect(c.socketErrors).toBe(1);
    expect(c.errorRate).toBeCloseTo(4 / 6, 10);
    expect(c.rejectedRate).toBeCloseTo(1 / 6, 10);
    expect(c.statusCodes).toEqual({ '202': 1, '503': 2, '404': 1 });
    expect(c.errorSamples.map((s) => [s.kind, s.status])).toEqual([
      ['enqueue', 503],
      ['status', 404],
      ['socket', null],
    ]);
    expect(c.pickId()).toBe('scan_1');
  });

  it('takes scan durations from finished scans once each, server-side first, never from cached answers', () => {
    const c = new StressCollector();
    c.onResponse({ kind: 'scan', status: 200, body: view({}), headers: {}, clientMs: 2_600 });
    c.onResponse({ kind: 'status', status: 200, body: view({}), headers: {}, clientMs: 3 });
    c.onResponse({ kind: 'scan', status: 200, body: view({ id: 'scan_b', createdAt: null, status: 'failed', error: { code: 'HTTP_SERVER_ERROR' } }), headers: {}, clientMs: 4_000 });
    c.onResponse({ kind: 'scan', status: 200, body: view({ id: 'scan_c', cached: true }), headers: {}, clientMs: 4 });
    c.onResponse({ kind: 'scan', status: 202, body: JSON.stringify({ id: 'scan_d', status: 'queued' }), headers: {}, clientMs: 120_000 });
    expect(c.scansCompleted).toBe(1);
    expect(c.scansFailed).toBe(1);
    expect(c.failureCodes).toEqual({ HTTP_SERVER_ERROR: 1 });
    expect(c.cachedAnswers).toBe(1);
    expect(c.waitExpired).toBe(1);
    const d = c.scanDuration.summary();
    expect(d.count).toBe(2);
    expect(d.min).toBeCloseTo(2_500, -1);
    expect(d.max).toBeCloseTo(4_000, -1);
  });

  it('files each latency under the kind of the answer just recorded', () => {
    const c = new StressCollector();
    c.onSent('health');
    c.onResponse({ kind: 'health', status: 200, body: '{"status":"healthy"}', headers: {}, clientMs: 1 });
    c.onLatency(12);
    c.onSent('scan');
    expect(c.byKind.health.latency.count).toBe(1);
    expect(c.byKind.scan.latency.count).toBe(0);
    expect(c.latency.count).toBe(1);
    expect(c.sent).toBe(2);
  });
});

describe('health sampling and recovery', () => {
  it('reads /health/detailed and tolerates what a deployment lacks', () => {
    const s = readHealth(
      { status: 'degraded', system: { memory: { rss: 200, heapUsed: 50 }, eventLoopDelayP99Ms: 12 }, queue: { waiting: 3, active: 2 }, dlq: { size: 4 }, circuitBreakers: { services: { ai: { state: 'OPEN' } } } },
      10,
    );
    expect(s).toEqual({ t: 10, status: 'degraded', detailed: true, rssMb: 200, heapMb: 50, queueDepth: 5, eventLoopP99Ms: 12, dlqSize: 4, breakers: { ai: 'OPEN' }, chromiumRssMb: null });
    expect(readHealth({ status: 'healthy' }, 0)).toMatchObject({ status: 'healthy', detailed: false, queueDepth: null, breakers: null, dlqSize: null });
    expect(readHealth('nonsense', 0).status).toBe('unreachable');
  });

  const sample = (over: Partial<HealthSample>): HealthSample => ({ t: 0, status: 'healthy', detailed: true, rssMb: 1, heapMb: 1, queueDepth: 0, eventLoopP99Ms: 1, dlqSize: 0, breakers: null, chromiumRssMb: null, ...over });

  it('times the drain and the return to healthy, ignoring plain answers from a detailed deployment', async () => {
    const answers = [sample({ detailed: false, queueDepth: null }), sample({ status: 'degraded', queueDepth: 4 }), sample({ status: 'healthy', queueDepth: 2 }), sample({ queueDepth: 0 })];
    let i = 0;
    const r = await awaitRecovery(async () => answers[Math.min(i++, answers.length - 1)]!, 10_000, { intervalMs: 5, detailed: true });
    expect(i).toBe(4);
    expect(r.healthyMs).toEqual(expect.any(Number));
    expect(r.drainedMs).toEqual(expect.any(Number));
    expect(r.drainedMs!).toBeGreaterThanOrEqual(r.healthyMs!);
    expect(r.last?.queueDepth).toBe(0);
  });

  it('counts from the end of the load, not from when the wait began', async () => {
    // The monitor's last probe held the wait back 500 ms: the queue was already empty then.
    const loadEndedAt = performance.now() - 500;
    const r = await awaitRecovery(async () => sample({ status: 'healthy', queueDepth: 0 }), 10_000, { intervalMs: 5, detailed: true, loadEndedAt });
    expect(r.drainedMs!).toBeGreaterThanOrEqual(500);
    expect(r.healthyMs!).toBeGreaterThanOrEqual(500);
  });

  it('gives up at the deadline with null figures', async () => {
    const r = await awaitRecovery(async () => sample({ status: 'degraded', queueDepth: 9 }), 60, { intervalMs: 10, detailed: true });
    expect(r).toMatchObject({ drainedMs: null, healthyMs: null, deadlineMs: 60 });
  });

  it('reads once and stops when the run is interrupted, instead of waiting for the deadline', async () => {
    const abort = new AbortController();
    let probes = 0;
    const r = await awaitRecovery(
      async () => {
        probes++;
        abort.abort('SIGINT');
        return sample({ status: 'degraded', queueDepth: 9, dlqSize: 2 });
      },
      2_000,
      { intervalMs: 5, detailed: true, signal: abort.signal },
    );
    expect(probes).toBe(1);
    expect(r).toMatchObject({ drainedMs: null, healthyMs: null, last: { dlqSize: 2 } });
  });
});

describe('a deployment that refuses the key', () => {
  it('is a tool error naming the target and --token, before any load', async () => {
    let posts = 0;
    const server = createServer((req, res) => {
      req.resume();
      if (req.method === 'POST') posts++;
      if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy"}');
      if (req.headers.authorization !== 'Bearer good') return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"UNAUTHORIZED"}');
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"NOT_FOUND"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const scenario = parseScenario({ target: base, connections: 1, amount: 1, mix: { health: 1 }, pages: ['http://203.0.113.1/'], recovery: { deadline: '100ms' } }, 'auth.json');
      const target = (token?: string) => ({ label: base, baseUrl: base, siteOrigin: null, ...(token ? { token } : {}) });
      const scans = { ...scenario, stages: scenario.stages.map((st) => ({ ...st, mix: { scan: 1, enqueue: 0, status: 0, health: 0 } })) };
      await expect(runStress({ scenario: scans, target: target() })).rejects.toThrow(`target ${base} answered 401 to GET /api/scans/:id: it needs an API key: give it with --token`);
      await expect(runStress({ scenario: scans, target: target('bad') })).rejects.toThrow(/answered 401 .*: it refuses the key given with --token$/);
      expect(posts).toBe(0);
      // Health reads need no key; the right key passes.
      expect((await runStress({ scenario, target: target() })).requests).toBe(1);
      expect((await runStress({ scenario: scans, target: target('good') })).statusCodes).toEqual({ '404': 1 });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('an interrupted run', () => {
  it('sends no load when interrupted before it began, skips the recovery wait and says so', async () => {
    // A deployment whose queue never drains: recovery would wait for its whole deadline.
    let posts = 0;
    const server = createServer((req, res) => {
      if (req.method === 'POST') posts++;
      req.resume();
      if (req.url === '/health' || req.url === '/health/detailed') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'degraded', system: { memory: { rss: 100, heapUsed: 50 } }, queue: { waiting: 7, active: 2 } }));
        return;
      }
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"id":"scan_x","status":"queued"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const scenario = parseScenario(
        { target: base, connections: 2, duration: '2s', mix: { enqueue: 1 }, pages: ['http://203.0.113.1/'], recovery: { deadline: '3s' }, thresholds: { http_reqs: ['count>=0'] } },
        'interrupted.json',
      );
      const abort = new AbortController();
      abort.abort('SIGTERM');
      const r = await runStress({ scenario, target: { label: base, baseUrl: base, siteOrigin: null }, signal: abort.signal });
      expect(posts).toBe(0);
      expect(r.requests).toBe(0);
      expect(r.interrupted).toBe('SIGTERM');
      // Its one threshold holds over what ran (nothing), yet a cut run passes nothing.
      expect(r.thresholds).toEqual([{ metric: 'http_reqs', expression: 'count>=0', actual: 0, passed: true }]);
      expect(r.passed).toBe(false);
      expect(r.recovery).toMatchObject({ drainedMs: null, healthyMs: null });
      const done = await runStress({ scenario: { ...scenario, stages: scenario.stages.map((st) => ({ ...st, durationMs: 300 })), recovery: { deadlineMs: 100 } }, target: { label: base, baseUrl: base, siteOrigin: null } });
      expect(done.interrupted).toBeNull();
      expect(done.passed).toBe(true);
      expect(posts).toBeGreaterThan(0);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('thresholds over a run that produced nothing', () => {
  it('fails rate thresholds when no request was answered (a server that hangs does not pass rate<0.1)', async () => {
    // A deployment that takes every request and never answers one.
    const server = createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy"}');
        return;
      }
      if (req.method === 'POST') req.resume();
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const scenario = parseScenario(
        {
          target: base,
          connections: 2,
          duration: '1s',
          timeout: '30s',
          mix: { enqueue: 1 },
          pages: ['http://203.0.113.1/'],
          recovery: { deadline: '300ms' },
          thresholds: { http_req_failed: ['rate<0.1'], http_req_timeouts: ['rate<0.1'], scan_failed: ['rate<0.1'], http_reqs: ['count>=0'] },
        },
        'hang.json',
      );
      const r = await runStress({ scenario, target: { label: base, baseUrl: base, siteOrigin: null } });
      expect(r.requests).toBe(0);
      expect(r.inFlightAtEnd).toBeGreaterThan(0);
      const byMetric = Object.fromEntries(r.thresholds.map((t) => [t.metric, t]));
      for (const metric of ['http_req_failed', 'http_req_timeouts', 'scan_failed']) expect(byMetric[metric]).toMatchObject({ actual: null, passed: false });
      // A count over nothing is a figure: zero.
      expect(byMetric.http_reqs).toMatchObject({ actual: 0, passed: true });
      expect(r.passed).toBe(false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
