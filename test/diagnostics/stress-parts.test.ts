import { describe, expect, it } from 'vitest';
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

  it('gives up at the deadline with null figures', async () => {
    const r = await awaitRecovery(async () => sample({ status: 'degraded', queueDepth: 9 }), 60, { intervalMs: 10, detailed: true });
    expect(r).toMatchObject({ drainedMs: null, healthyMs: null, deadlineMs: 60 });
  });
});
