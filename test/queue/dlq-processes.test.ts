import { spawn, type ChildProcess } from 'node:child_process';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DlqEntry } from '../../src/domain/dlq.js';
import { DlqStore } from '../../src/queue/dlq-store.js';
import { BIN, ROOT } from '../cli/run-cli.js';
import { startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { isAlive } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, LogSink, startTestService, TEST_SETTINGS, uniquePrefix, waitFor, type TestService } from '../support/service.js';

/**
 * The DLQ across processes: two `wcagai worker` children and an in-process API all run a capture
 * on one queue; then a scan whose workers are SIGKILLed mid-scan, twice (maxStalledCount is 1),
 * is failed by the stall check and lands in the DLQ as STALLED. Real Redis and Chromium.
 */

const TOKEN = 'dlq-proc-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
// Short locks so a killed worker's scan is judged stalled within seconds (defaults derive ≥ 30 s).
const FAST_STALL = { WORKER_LOCK_DURATION: '2s', WORKER_STALLED_INTERVAL: '1s' };

let redis: RedisServer;
let fixture: FixtureServer;
let api: TestService;
const prefix = uniquePrefix('dlqp');
const others: TestService[] = [];

interface Child {
  proc: ChildProcess;
  /** JSON log lines it printed. */
  logs: LogSink;
}
const children: Child[] = [];

/** `node bin/wcagai worker` on the test queue: one scan at a time, JSON logs on stdout. */
function spawnWorker(): Child {
  const env = {
    ...baseEnv(),
    ...TEST_SETTINGS,
    ...FAST_STALL,
    SCAN_TIMEOUT: '30s',
    NAVIGATION_TIMEOUT: '25s',
    REDIS_URL: redis.url,
    QUEUE_PREFIX: prefix,
    LOG_PRETTY: 'false',
  };
  const proc = spawn(process.execPath, [BIN, 'worker', '--concurrency', '1'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = new LogSink();
  let buffer = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    const end = buffer.lastIndexOf('\n');
    if (end < 0) return;
    logs.write(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
  });
  proc.stderr!.resume();
  const child = { proc, logs };
  children.push(child);
  return child;
}

/** The pid in a worker id (`host-pid-hex`, recorded by BullMQ as the job's processedBy). */
const pidOf = (workerId: string | undefined) => Number(/-(\d+)-[0-9a-f]{6}$/.exec(workerId ?? '')?.[1]);

async function entries(): Promise<DlqEntry[]> {
  return (await api.get('/admin/dlq/jobs?limit=1000', AUTH)).json.entries as DlqEntry[];
}

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  fixture.hang('/hang');
  api = await startTestService({ redisUrl: redis.url, prefix, settings: { ADMIN_TOKEN: TOKEN } });
  // Two entries past a one-hour retention, for the scheduler of the worker service started last.
  const store = new DlqStore(api.service.redis, api.service.keys);
  const old = new Date(Date.now() - 3 * 3_600_000).toISOString();
  for (const n of [1, 2]) {
    const url = `https://old.example/${n}`;
    await store.write(`dlq_old${n}`, {
      id: `dlq_old${n}`,
      jobId: `scan_old${n}`,
      request: { url, options: { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false }, priority: 'normal' },
      host: 'old.example',
      code: 'SEEDED_OLD',
      message: 'seeded',
      retryable: true,
      attemptsMade: 1,
      attempts: [{ attempt: 1, jobId: `scan_old${n}`, code: 'SEEDED_OLD', message: 'seeded', at: old }],
      firstFailedAt: old,
      lastFailedAt: old,
      retries: [],
      status: 'dead',
    }, '', `scan_old${n}`);
  }
  spawnWorker();
  spawnWorker();
  // Both children are up once their heartbeats are in Redis.
  await waitFor(async () => (await api.get('/health/detailed')).json.workers.length === 2, { timeoutMs: 45_000, what: 'two worker processes' });
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await Promise.allSettled([api?.close(), ...others.map((s) => s.close())]);
  await Promise.allSettled([redis?.close(), fixture?.close()]);
});

describe('DLQ across processes', () => {
  it('makes one entry per failed scan while two worker processes and the API all capture', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await api.post('/api/scans', { url: fixture.url(`/gone-${i}`) });
      expect(res.status, res.body).toBe(202);
      ids.push(res.json.id);
    }
    await waitFor(async () => (await entries()).filter((e) => e.code === 'HTTP_CLIENT_ERROR').length === ids.length, { timeoutMs: 45_000, what: 'six DLQ entries' });
    await new Promise((r) => setTimeout(r, 1_000));
    const captured = (await entries()).filter((e) => e.code === 'HTTP_CLIENT_ERROR');
    expect(captured.map((e) => e.jobId).sort()).toEqual([...ids].sort());
    // Three processes observed every failure; each was written by exactly one of them.
    const writes = [api.logs, ...children.map((c) => c.logs)].flatMap((l) => l.events('dlq.captured', (e) => e.code === 'HTTP_CLIENT_ERROR'));
    expect(writes.map((e) => e.jobId).sort()).toEqual([...ids].sort());
    // The scans ran in the children: each entry names the worker process of its attempt.
    const pids = new Set(captured.map((e) => pidOf(e.workerId)));
    for (const pid of pids) expect(children.map((c) => c.proc.pid)).toContain(pid);
  });

  it('catches a scan whose workers were killed mid-scan beyond the stall limit, as STALLED', async () => {
    const res = await api.post('/api/scans', { url: fixture.url('/hang') });
    expect(res.status, res.body).toBe(202);
    const id = res.json.id as string;
    const runningIn = async (exclude: number[]) =>
      waitFor(
        async () => {
          const job = await Job.fromId(api.service.queue, id);
          const pid = pidOf(job?.processedBy);
          return (await job?.getState()) === 'active' && pid && !exclude.includes(pid) ? pid : undefined;
        },
        { timeoutMs: 30_000, what: `scan ${id} to run in a worker process` },
      );
    const first = await runningIn([]);
    process.kill(first, 'SIGKILL');
    // The other child's stall check gives the scan back to the queue and runs it itself.
    const second = await runningIn([first]);
    process.kill(second, 'SIGKILL');
    await waitFor(() => !isAlive(first) && !isAlive(second), { what: 'both workers to die' });

    // A worker started now finds the scan stalled a second time and fails it (maxStalledCount 1).
    const finisher = await startTestService({ redisUrl: redis.url, prefix, api: false, worker: 1, settings: { ...FAST_STALL, DLQ_RETENTION: '1h' } });
    others.push(finisher);
    const entry = await waitFor(async () => (await entries()).find((e) => e.jobId === id), { timeoutMs: 45_000, what: 'the STALLED entry' });
    expect(entry).toMatchObject({ code: 'STALLED', retryable: true, status: 'dead', request: { url: fixture.url('/hang') } });
    expect(entry.message).toMatch(/stalled more than allowable limit/);
    expect(entry.attempts[entry.attempts.length - 1]).toMatchObject({ code: 'STALLED', jobId: id });
    // GET /api/scans/:id says failed (capture wrote the final record the killed workers never did).
    const view = await api.finished(id, 10_000);
    expect(view).toMatchObject({ status: 'failed', error: { code: 'STALLED' } });
  });

  it('runs retention as a scheduled job in worker processes: entries past DLQ_RETENTION leave', async () => {
    // The worker service of the previous test runs DLQ_RETENTION=1h; the seeded entries are 3 h old.
    await waitFor(async () => !(await entries()).some((e) => e.code === 'SEEDED_OLD'), { timeoutMs: 20_000, what: 'retention to purge the seeded entries' });
    const stats = (await api.get('/admin/dlq/stats', AUTH)).json;
    expect(stats.byCode).toEqual({ HTTP_CLIENT_ERROR: 6, STALLED: 1 });
    expect(stats.total).toBe(7);
  });
});
