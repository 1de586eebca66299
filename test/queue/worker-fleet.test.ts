import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHeartbeat } from '../../src/queue/heartbeat.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { freePort } from '../support/net.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';
import { reap, spawnWorker, type WorkerProcess } from './worker-process.js';

const SCANS = 10;

let redis: RedisServer;
let fixture: FixtureServer;
let api: TestService;
let workers: WorkerProcess[] = [];
let healthPort: number;

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  // Each page takes a moment, so one worker cannot drain the queue before the other looks.
  for (let i = 0; i < SCANS; i++) fixture.html(`/page-${i}.html`, page(`<h1>Page ${i}</h1>`), { delayMs: 300 });
  const prefix = uniquePrefix('fleet');
  api = await startTestService({ redisUrl: redis.url, prefix });
  healthPort = await freePort();
  workers = [spawnWorker(redis.url, prefix, { WORKER_CONCURRENCY: '1', WORKER_HEALTH_PORT: String(healthPort) }), spawnWorker(redis.url, prefix, { WORKER_CONCURRENCY: '1' })];
  await Promise.all(workers.map((w) => w.waitForLog((e) => e.event === 'worker.start', 45_000)));
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.stop()));
  await reap(workers.flatMap((w) => w.browserPids));
  await api?.close();
  await redis?.close();
  await fixture?.close();
});

async function heartbeats(): Promise<WorkerHeartbeat[]> {
  const res = await api.get<{ workers: WorkerHeartbeat[] }>('/api/workers');
  expect(res.status).toBe(200);
  return res.json.workers;
}

describe('two `wcagai worker` processes on one queue', () => {
  it('both report heartbeats, share ten scans, and complete all of them', async () => {
    const beats = await waitFor(async () => ((await heartbeats()).length === 2 ? heartbeats() : undefined), { what: 'two heartbeats' });
    expect(beats.map((b) => b.pid).sort()).toEqual(workers.map((w) => w.pid).sort());
    for (const b of beats) expect(b).toMatchObject({ role: 'worker', concurrency: 1, scansDone: 0 });
    // The API process publishes a heartbeat too, as an API process: never among the workers.
    const health = await api.get('/health/detailed');
    expect(health.json.workers.map((w: WorkerHeartbeat) => w.pid).sort()).toEqual(workers.map((w) => w.pid).sort());
    expect(health.json.apiProcesses.map((p: { pid: number; role: string }) => [p.pid, p.role])).toEqual([[process.pid, 'api']]);

    const ids: string[] = [];
    for (let i = 0; i < SCANS; i++) {
      const res = await api.post('/api/scans', { url: fixture.url(`/page-${i}.html`) });
      expect(res.status, res.body).toBe(202);
      ids.push(res.json.id);
    }
    const views = await Promise.all(ids.map((id) => api.finished(id, 60_000)));
    expect(views.map((v) => v.status)).toEqual(Array(SCANS).fill('completed'));
    for (let i = 0; i < SCANS; i++) expect(fixture.requestsTo(`/page-${i}.html`)).toHaveLength(1);

    // Each worker's own log accounts for its share; together, every scan exactly once. (The record
    // is stored before the worker logs, and its log reaches us asynchronously: wait for the lines.)
    const completedBy = (w: WorkerProcess) => w.logs.filter((e) => e.event === 'scan.completed').map((e) => e.jobId as string);
    await waitFor(() => workers.reduce((n, w) => n + completedBy(w).length, 0) >= SCANS, { timeoutMs: 5_000, what: 'every scan.completed log line' });
    const done = workers.map(completedBy);
    expect(done[0]!.length, 'first worker completed none').toBeGreaterThan(0);
    expect(done[1]!.length, 'second worker completed none').toBeGreaterThan(0);
    expect([...done[0]!, ...done[1]!].sort()).toEqual([...ids].sort());

    // BullMQ recorded which worker ran each job, and it is the one that logged it.
    const byId = new Map(beats.map((b) => [b.id, workers.find((w) => w.pid === b.pid)!]));
    for (const id of ids) {
      const job = await Job.fromId(api.service.queue, id);
      const ran = byId.get(job!.processedBy ?? '');
      expect(ran, `job ${id} processed by ${job?.processedBy}`).toBeDefined();
      expect(ran!.logs.some((e) => e.event === 'scan.completed' && e.jobId === id)).toBe(true);
    }

    // The next heartbeats carry the counts, and show both workers idle again.
    const after = await waitFor(
      async () => {
        const hb = await heartbeats();
        return hb.length === 2 && hb.reduce((n, b) => n + b.scansDone, 0) === SCANS && hb.every((b) => b.active === 0) ? hb : undefined;
      },
      { timeoutMs: 15_000, what: 'heartbeats counting every scan, nothing active' },
    );
    for (const b of after) expect(b.scansDone).toBeGreaterThan(0);
  });

  it('answers health on WORKER_HEALTH_PORT: live, ready with Redis and a browser up, problem+json elsewhere', async () => {
    const base = `http://127.0.0.1:${healthPort}`;
    await workers[0]!.waitForLog((e) => e.event === 'worker.health_listening', 10_000);
    const live = await fetch(`${base}/health/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${base}/health/ready`, { headers: { 'x-request-id': 'health-check-1' } });
    expect(ready.status).toBe(200);
    expect(ready.headers.get('x-request-id')).toBe('health-check-1');
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { redis: { status: 'up' }, browser: { status: 'up', pages: 1 } } });
    expect(await (await fetch(`${base}/health`)).json()).toMatchObject({ status: 'healthy' });
    // A trailing slash is the same path, as on the API (probes are often written with one).
    expect((await fetch(`${base}/health/ready/`)).status).toBe(200);
    // Only health is served: no API, no admin routes on a worker.
    const api404 = await fetch(`${base}/api/scans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(api404.status).toBe(404);
    expect(api404.headers.get('content-type')).toContain('application/problem+json');
    expect(await api404.json()).toMatchObject({ status: 404, code: 'NOT_FOUND', instance: '/api/scans' });
  });

  it('stops on SIGTERM: exit code 0, heartbeat withdrawn, browser gone', async () => {
    const [first, second] = workers as [WorkerProcess, WorkerProcess];
    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.logs.some((e) => e.event === 'shutdown.done')).toBe(true);
    expect(await reap(first.browserPids, 5_000)).toEqual([]);
    const left = await heartbeats();
    expect(left.map((b) => b.pid)).toEqual([second.pid]);
  });
});
