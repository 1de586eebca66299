import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { freePort } from '../support/net.js';
import { groupMembers } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, startTestService, TEST_SETTINGS, uniquePrefix, waitFor, type JsonResponse, type TestService } from '../support/service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));

let redis: RedisServer;
let fixture: FixtureServer;
let svc: TestService;

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  // Slow enough that the scan is still running when Redis goes away.
  fixture.html('/accepted-before.html', page('<h1>Accepted before the outage</h1>'), { delayMs: 3_000 });
  fixture.html('/after.html', page('<h1>After</h1>'));
  svc = await startTestService({ redisUrl: redis.url, worker: 1, settings: { WORKER_STALLED_INTERVAL: '2s' } });
});

afterAll(async () => {
  if (redis && redis.pid === null) await redis.restart().catch(() => undefined);
  await svc?.close();
  await redis?.close();
  await fixture?.close();
});

function expectProblem503(res: JsonResponse, what: string): void {
  expect(res.status, `${what}: ${res.body}`).toBe(503);
  expect(res.headers['content-type'], what).toBe('application/problem+json; charset=utf-8');
  expect(res.json, what).toMatchObject({ status: 503, code: 'REDIS_UNAVAILABLE', type: 'urn:wcagai:problem:redis-unavailable' });
  expect(res.json.requestId).toBe(res.headers['x-request-id']);
}

describe('Redis stopped while the service runs', () => {
  it('answers 503 problem+json within a second, reports not ready and unhealthy, recovers by itself and loses no accepted scan', async () => {
    expect((await svc.get('/health/ready')).status).toBe(200);
    const accepted = await svc.post('/api/scans', { url: fixture.url('/accepted-before.html') });
    expect(accepted.status, accepted.body).toBe(202);
    await waitFor(() => fixture.requestsTo('/accepted-before.html').length > 0, { timeoutMs: 15_000, what: 'the scan to be running' });

    // A Redis that persists what it acknowledged (an RDB snapshot), then crashes.
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    await admin.save();
    admin.disconnect();
    await redis.stop();

    const submit = await svc.post('/api/scans', { url: fixture.url('/after.html') });
    expectProblem503(submit, 'submit');
    expect(submit.ms, `submit took ${Math.round(submit.ms)} ms`).toBeLessThan(1_000);

    const ready = await svc.get('/health/ready');
    expect(ready.status, ready.body).toBe(503);
    expect(ready.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(ready.json.checks.redis.status).toBe('down');
    expect(ready.ms).toBeLessThan(1_500);

    const detailed = await svc.get('/health/detailed');
    expect(detailed.status, detailed.body).toBe(503);
    expect(detailed.json).toMatchObject({ status: 'unhealthy', checks: { redis: { status: 'down' } } });
    expect(detailed.ms).toBeLessThan(3_000);
    expect((await svc.get('/health')).status).toBe(503);
    expect((await svc.get('/health/live')).status).toBe(200);

    // Still fast while the client is between reconnection attempts.
    await new Promise((r) => setTimeout(r, 1_500));
    const later = await svc.post('/api/scans', { url: fixture.url('/after.html') }, { 'x-request-id': 'during-outage' });
    expectProblem503(later, 'submit during reconnection');
    expect(later.ms, `submit took ${Math.round(later.ms)} ms`).toBeLessThan(1_000);
    expect(later.json.requestId).toBe('during-outage');
    expect(svc.logs.events('http.error')).toEqual([]);

    await redis.restart();
    const restarted = Date.now();
    const after = await waitFor(
      async () => {
        const res = await svc.post('/api/scans', { url: fixture.url('/after.html') });
        return res.status === 202 ? res : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the API to accept scans again' },
    );
    expect(Date.now() - restarted).toBeLessThan(10_000);
    expect((await svc.get('/health/ready')).status).toBe(200);

    // The scan accepted before the outage is not lost: it completes after it.
    const before = await svc.finished(accepted.json.id, 40_000);
    expect(before).toMatchObject({ status: 'completed', url: fixture.url('/accepted-before.html') });
    expect(await svc.finished(after.json.id, 30_000)).toMatchObject({ status: 'completed' });
    const detailedAfter = await svc.get('/health/detailed');
    expect(detailedAfter.status).toBe(200);
    expect(detailedAfter.json.checks.redis.status).toBe('up');
    expect(detailedAfter.json.queue).toMatchObject({ active: 0, waiting: 0, failed: 0 });
    // Every section of the detailed view, with figures in the units it names.
    const d = detailedAfter.json;
    expect(d).toMatchObject({
      status: expect.stringMatching(/^(healthy|degraded)$/),
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      checks: { store: { status: 'up' }, browser: { status: 'up', pages: expect.any(Number), restarts: 0 } },
      queue: { capacity: 'healthy', maxCapacity: expect.any(Number), utilizationPercent: 0, delayed: 0 },
      workers: expect.any(Array),
    });
    expect(Date.now() - Date.parse(d.timestamp)).toBeLessThan(60_000);
    for (const check of [d.checks.redis, d.checks.store]) expect(check.responseTime).toBeGreaterThanOrEqual(0);
    const { memory, eventLoopDelayMs, uptime } = d.system;
    // Megabytes, not bytes: a Node process here holds tens to hundreds of them.
    expect(memory.rss).toBeGreaterThan(20);
    expect(memory.rss).toBeLessThan(4_096);
    expect(memory.heapUsed).toBeGreaterThan(1);
    expect(memory.heapUsed).toBeLessThanOrEqual(memory.heapTotal);
    expect(memory.heapTotal).toBeLessThanOrEqual(memory.rss);
    expect(eventLoopDelayMs).toBeGreaterThanOrEqual(0);
    expect(eventLoopDelayMs).toBeLessThan(1_000);
    expect(uptime).toBeGreaterThanOrEqual(0);
  });
});

describe('SIGTERM while Redis is down', () => {
  it('`wcagai serve` still exits, within SHUTDOWN_TIMEOUT plus the close grace, and leaves no Chromium behind', async () => {
    const own = await startRedisServer();
    const port = await freePort();
    const env = { ...baseEnv(), ...TEST_SETTINGS, REDIS_URL: own.url, QUEUE_PREFIX: uniquePrefix('down'), PORT: String(port), SHUTDOWN_TIMEOUT: '1s', WORKER_CONCURRENCY: '1' };
    const proc = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => proc.once('exit', (code) => resolve({ code, at: Date.now() })));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok, { timeoutMs: 45_000, intervalMs: 200, what: `serve to be ready:\n${output}` });
      const launch = /"event":"browser.launch","browserPid":(\d+)/.exec(output);
      expect(launch, output).not.toBeNull();
      const browserPid = Number(launch![1]);
      await own.stop();
      await new Promise((r) => setTimeout(r, 500));
      const signalled = Date.now();
      proc.kill('SIGTERM');
      const exit = await exited;
      // 1 s SHUTDOWN_TIMEOUT + 10 s grace (SHUTDOWN_GRACE_MS), plus slack for a loaded machine.
      expect(exit.at - signalled, output.slice(-2_000)).toBeLessThan(14_000);
      expect([0, 1]).toContain(exit.code);
      if (exit.code === 1) expect(output).toContain('"event":"shutdown.timeout"');
      expect(await waitFor(() => groupMembers(browserPid).length === 0, { timeoutMs: 10_000, what: 'Chromium to be gone' })).toBe(true);
    } finally {
      proc.kill('SIGKILL');
      await own.close();
    }
  });
});
