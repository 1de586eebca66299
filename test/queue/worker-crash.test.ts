import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerHeartbeat } from '../../src/queue/heartbeat.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';
import { reap, spawnWorker, type WorkerProcess } from './worker-process.js';

/**
 * A short lock and stall check, so a dead worker's job is noticed within seconds instead of the
 * default 30 s + 30 s. The lock is still renewed every 3 s while a scan runs, so a live scan is
 * never judged stalled.
 */
const WORKER_SETTINGS = { WORKER_CONCURRENCY: '1', SCAN_TIMEOUT: '10s', WORKER_LOCK_DURATION: '6s', WORKER_STALLED_INTERVAL: '1s' };

let redis: RedisServer;
let fixture: FixtureServer;
let api: TestService;
let workers: WorkerProcess[] = [];

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  // The first load of the slow page never answers (its worker dies meanwhile); later ones take half a second.
  fixture.route('/slow.html', (_req, res) => {
    if (fixture.requestsTo('/slow.html').length === 1) return;
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page('<h1>Slow</h1>')), 500);
  });
  for (let i = 0; i < 3; i++) fixture.html(`/quick-${i}.html`, page(`<h1>Quick ${i}</h1>`));
  const prefix = uniquePrefix('crash');
  api = await startTestService({ redisUrl: redis.url, prefix });
  workers = [spawnWorker(redis.url, prefix, WORKER_SETTINGS), spawnWorker(redis.url, prefix, WORKER_SETTINGS)];
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
  return (await api.get<{ workers: WorkerHeartbeat[] }>('/api/workers')).json.workers;
}

describe('a worker killed with SIGKILL in the middle of a scan', () => {
  it('loses no job: the other worker picks the scan up once the lock expires and completes it', async () => {
    const beats = await waitFor(async () => {
      const hb = await heartbeats();
      return hb.length === 2 ? hb : undefined;
    }, { what: 'two heartbeats' });

    const slow = await api.post('/api/scans', { url: fixture.url('/slow.html') });
    expect(slow.status, slow.body).toBe(202);
    const slowId = slow.json.id as string;

    // The page load has begun: the scan is in the middle of its navigation. Which worker holds it?
    await waitFor(() => fixture.requestsTo('/slow.html').length === 1, { what: 'the slow page to be requested' });
    const holder = await waitFor(async () => (await Job.fromId(api.service.queue, slowId))?.processedBy, { what: 'processedBy of the slow scan' });
    const victimBeat = beats.find((b) => b.id === holder)!;
    expect(victimBeat, `processedBy ${holder} is one of the live workers`).toBeDefined();
    const victim = workers.find((w) => w.pid === victimBeat.pid)!;
    const survivor = workers.find((w) => w !== victim)!;
    expect(victim.logs.some((e) => e.event === 'scan.start' && e.jobId === slowId)).toBe(true);
    // Read as a client would: a 503 (a Redis command past its 2 s timeout on a starved machine) is retried.
    const view = await waitFor(async () => {
      const res = await api.get(`/api/scans/${slowId}`);
      return res.status === 503 ? undefined : res;
    }, { what: `a status read of ${slowId} that is not a 503` });
    expect(view.json.status).toBe('active');

    // More work arrives while the victim is busy; the survivor takes it.
    const quick: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api.post('/api/scans', { url: fixture.url(`/quick-${i}.html`) });
      expect(res.status).toBe(202);
      quick.push(res.json.id);
    }

    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await victim.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // Its Chromium (driven over a pipe) goes with it.
    expect(await reap(victim.browserPids, 10_000)).toEqual([]);

    const views = await Promise.all([slowId, ...quick].map((id) => api.finished(id, 45_000)));
    const recoveredMs = Date.now() - killedAt;
    expect(views.map((v) => v.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    // A stall is not a failed attempt: the scan completed on its first counted attempt.
    expect(views[0]).toMatchObject({ id: slowId, status: 'completed', attempts: 1 });

    // The survivor ran the recovered scan (and the quick ones); the victim finished nothing.
    const job = await Job.fromId(api.service.queue, slowId);
    expect(job!.processedBy).not.toBe(holder);
    // (The record is stored before the worker logs, and its log reaches us asynchronously.)
    for (const id of [slowId, ...quick]) await survivor.waitForLog((e) => e.event === 'scan.completed' && e.jobId === id, 5_000);
    expect(victim.logs.some((e) => e.event === 'scan.completed')).toBe(false);
    // One load by the victim (never answered), one by the survivor.
    expect(fixture.requestsTo('/slow.html')).toHaveLength(2);
    // Lock (6 s) + two stall checks (1 s) + the scan: well under the default's 60 s and more.
    expect(recoveredMs).toBeLessThan(20_000);

    // The dead worker's heartbeat expires (three missed beats); the survivor's remains.
    const left = await waitFor(async () => {
      const hb = await heartbeats();
      return hb.length === 1 ? hb : undefined;
    }, { timeoutMs: 20_000, what: "the dead worker's heartbeat to expire" });
    expect(left[0]!.pid).toBe(survivor.pid);
    expect((await api.get('/api/queue')).json).toMatchObject({ waiting: 0, active: 0, failed: 0 });
  });
});
