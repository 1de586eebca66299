import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFor } from '../../src/queue/keys.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { freePort } from '../support/net.js';
import { groupMembers } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { baseEnv, TEST_SETTINGS, uniquePrefix, waitFor } from '../support/service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

interface Server {
  proc: ChildProcess;
  base: string;
  prefix: string;
  browserPid: number;
  exited: Promise<Exit>;
  output(): string;
  lines(): Array<Record<string, unknown>>;
}

const running = new Set<ChildProcess>();

/** `wcagai serve` with its embedded worker, spawned (`settings` may name another REDIS_URL); `browserPid` is 0 until it is ready. */
async function spawnServe(settings: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const prefix = uniquePrefix('shut');
  const env = { ...baseEnv(), ...TEST_SETTINGS, ALLOW_PRIVATE_TARGETS: 'true', REDIS_URL: redis.url, QUEUE_PREFIX: prefix, PORT: String(port), ...settings };
  const proc = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<Exit>((resolve) =>
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  const lines = () =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { proc, base: `http://127.0.0.1:${port}`, prefix, browserPid: 0, exited, output: () => output, lines };
}

/** `wcagai serve` with its embedded worker, started and warm (its browser launched). */
async function startServe(settings: Record<string, string>): Promise<Server> {
  const server = await spawnServe(settings);
  await waitFor(async () => (await fetch(`${server.base}/health/ready`)).ok, { timeoutMs: 45_000, intervalMs: 200, what: `serve to be ready:\n${server.output()}` });
  return { ...server, browserPid: launchedBrowser(server) };
}

/** The pid of the browser a server logged launching. */
function launchedBrowser(server: Server): number {
  const launch = server.lines().find((l) => l.event === 'browser.launch');
  expect(launch?.browserPid, server.output()).toEqual(expect.any(Number));
  return launch!.browserPid as number;
}

function submit(server: Server, url: string, wait?: number): Promise<{ status: number; body: Record<string, any>; connection: string | null }> {
  return fetch(`${server.base}/api/scans`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(wait ? { prefer: `wait=${wait}` } : {}) },
    body: JSON.stringify({ url }),
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, any>, connection: res.headers.get('connection') }));
}

let redis: RedisServer;
let fixture: FixtureServer;
let conn: Redis;

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  for (const n of [1, 2, 3]) fixture.html(`/slow-${n}.html`, page(`<h1>Slow ${n}</h1>`), { delayMs: 2_500 });
  for (const n of [1, 2, 3]) fixture.html(`/slower-${n}.html`, page(`<h1>Slower ${n}</h1>`), { delayMs: 7_000 });
  fixture.html('/forced.html', page('<h1>Forced</h1>'), { delayMs: 7_000 });
});

afterAll(async () => {
  for (const proc of running) proc.kill('SIGKILL');
  conn?.disconnect();
  await redis?.close();
  await fixture?.close();
});

async function statesOf(prefix: string, ids: string[]): Promise<Array<{ id: string; state: string; attemptsMade: number; failedReason?: string }>> {
  const keys = keysFor(prefix);
  const queue = new Queue(keys.queueName, { connection: conn, prefix: keys.bullPrefix });
  try {
    return await Promise.all(
      ids.map(async (id) => {
        const job = await queue.getJob(id);
        if (!job) return { id, state: 'missing', attemptsMade: 0 };
        return { id, state: await job.getState(), attemptsMade: job.attemptsMade, ...(job.failedReason ? { failedReason: job.failedReason } : {}) };
      }),
    );
  } finally {
    await queue.close();
  }
}

describe('graceful shutdown of `wcagai serve`', () => {
  it('answers in-flight Prefer: wait requests, finishes active scans and exits 0 within SHUTDOWN_TIMEOUT', async () => {
    const server = await startServe({ SHUTDOWN_TIMEOUT: '15s', WORKER_CONCURRENCY: '2' });
    const pending = [1, 2, 3].map((n) => submit(server, fixture.url(`/slow-${n}.html`), 30));
    // Two scans are navigating (concurrency 2), the third waits in the queue.
    await waitFor(() => [1, 2, 3].filter((n) => fixture.requestsTo(`/slow-${n}.html`).length > 0).length >= 2, { timeoutMs: 15_000, what: 'two scans to be active' });
    const signalled = Date.now();
    server.proc.kill('SIGTERM');

    // New connections are refused (or answered 503) once shutdown has begun.
    await new Promise((r) => setTimeout(r, 300));
    const late = await fetch(`${server.base}/health/live`).then(
      (r) => r.status,
      () => 'refused' as const,
    );
    expect([503, 'refused']).toContain(late);

    const answers = await Promise.all(pending);
    for (const a of answers) {
      expect([200, 202], JSON.stringify(a.body)).toContain(a.status);
      expect(a.body.id).toMatch(/^scan_/);
      // Answered after the signal: the connection ends with it instead of idling into the shutdown.
      expect(a.connection).toBe('close');
    }
    const exit = await server.exited;
    expect(exit, server.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    expect(exit.at - signalled).toBeLessThan(15_000);

    const states = await statesOf(
      server.prefix,
      answers.map((a) => a.body.id as string),
    );
    for (const s of states) expect(['completed', 'waiting', 'prioritized'], JSON.stringify(s)).toContain(s.state);
    // Both active scans finished; nothing was left active or failed.
    expect(states.filter((s) => s.state === 'completed').length).toBeGreaterThanOrEqual(2);
    const log = server.lines();
    expect(log.filter((l) => l.event === 'shutdown.done')).toHaveLength(1);
    expect(log.filter((l) => l.level as number >= 50), server.output().slice(-3_000)).toEqual([]);
    expect(await waitFor(() => groupMembers(server.browserPid).length === 0, { timeoutMs: 5_000, what: 'Chromium to be gone' })).toBe(true);
  });

  it('returns scans still running at the deadline to the queue, attempts unspent, and still exits 0', async () => {
    const server = await startServe({ SHUTDOWN_TIMEOUT: '2s', WORKER_CONCURRENCY: '2', SCAN_TIMEOUT: '20s', NAVIGATION_TIMEOUT: '15s' });
    const accepted = await Promise.all([1, 2].map((n) => submit(server, fixture.url(`/slower-${n}.html`))));
    for (const a of accepted) expect(a.status, JSON.stringify(a.body)).toBe(202);
    const waiting = submit(server, fixture.url('/slower-3.html'), 30);
    await waitFor(() => [1, 2].every((n) => fixture.requestsTo(`/slower-${n}.html`).length > 0), { timeoutMs: 15_000, what: 'both scans to be active' });
    const signalled = Date.now();
    server.proc.kill('SIGTERM');

    const exit = await server.exited;
    expect(exit, server.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    // The deadline, then release and close: well before the pages would have answered.
    expect(exit.at - signalled).toBeLessThan(8_000);
    // The waiting request got an answer (not a reset connection) before the process went away.
    const answer = await waiting.catch((err: Error) => ({ status: 0, body: { error: err.message } as Record<string, any> }));
    expect([200, 202], JSON.stringify(answer.body)).toContain(answer.status);
    expect(answer.body).toMatchObject({ id: expect.stringMatching(/^scan_/), status: 'queued' });

    const ids = [...accepted.map((a) => a.body.id as string), answer.body.id as string];
    const states = await statesOf(server.prefix, ids);
    for (const s of states) {
      expect(['waiting', 'prioritized'], JSON.stringify(s)).toContain(s.state);
      expect(s.attemptsMade, JSON.stringify(s)).toBe(0);
    }
    const log = server.lines();
    expect(log.filter((l) => l.event === 'scan.released')).toHaveLength(2);
    expect(log.filter((l) => l.event === 'scan.failed')).toEqual([]);
    expect(await waitFor(() => groupMembers(server.browserPid).length === 0, { timeoutMs: 5_000, what: 'Chromium to be gone' })).toBe(true);
  });

  it('exits at once on a second signal', async () => {
    const server = await startServe({ SHUTDOWN_TIMEOUT: '30s', WORKER_CONCURRENCY: '1', SCAN_TIMEOUT: '20s', NAVIGATION_TIMEOUT: '15s' });
    const accepted = await submit(server, fixture.url('/forced.html'));
    expect(accepted.status).toBe(202);
    await waitFor(() => fixture.requestsTo('/forced.html').length > 0, { timeoutMs: 15_000, what: 'the scan to be active' });
    server.proc.kill('SIGTERM');
    await waitFor(() => server.lines().some((l) => l.event === 'shutdown.start'), { timeoutMs: 5_000, what: 'shutdown to start' });
    const forced = Date.now();
    server.proc.kill('SIGINT');
    const exit = await server.exited;
    expect(exit.at - forced).toBeLessThan(2_000);
    expect(exit.code).toBe(1);
    expect(server.lines().some((l) => l.event === 'shutdown.forced')).toBe(true);
    // The scan is not lost: it is still in Redis, active under a lock that will expire (then stalled → waiting).
    const [state] = await statesOf(server.prefix, [accepted.body.id as string]);
    expect(['active', 'waiting', 'prioritized']).toContain(state!.state);
    expect(await waitFor(() => groupMembers(server.browserPid).length === 0, { timeoutMs: 10_000, what: 'Chromium to exit after its parent' })).toBe(true);
  });

  it('with Redis unreachable, still closes the browser and exits 0 before the backstop', async () => {
    const own = await startRedisServer();
    try {
      const server = await startServe({ REDIS_URL: own.url, SHUTDOWN_TIMEOUT: '5s', WORKER_CONCURRENCY: '1' });
      await own.stop();
      await waitFor(async () => (await fetch(`${server.base}/health/ready`)).status === 503, { timeoutMs: 10_000, what: 'serve to see Redis gone' });
      const signalled = Date.now();
      server.proc.kill('SIGTERM');
      const exit = await server.exited;
      expect(exit, server.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
      // SHUTDOWN_TIMEOUT + SHUTDOWN_GRACE_MS is the backstop's exit 1.
      expect(exit.at - signalled).toBeLessThan(15_000);
      const log = server.lines();
      expect(log.filter((l) => l.event === 'shutdown.done')).toHaveLength(1);
      expect(log.filter((l) => l.event === 'shutdown.timeout')).toEqual([]);
      expect(await waitFor(() => groupMembers(server.browserPid).length === 0, { timeoutMs: 5_000, what: 'Chromium to be gone' })).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('a SIGTERM during start-up waits for it, then shuts down and exits 0', async () => {
    const server = await spawnServe({ WORKER_CONCURRENCY: '1' });
    // The browser is up, the worker and the API are still being built.
    await waitFor(() => server.lines().some((l) => l.event === 'browser.launch'), { timeoutMs: 45_000, intervalMs: 20, what: `the browser to start:\n${server.output()}` });
    server.proc.kill('SIGTERM');
    const exit = await server.exited;
    expect(exit, server.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    const log = server.lines();
    expect(log.filter((l) => l.event === 'shutdown.done')).toHaveLength(1);
    expect(log.filter((l) => (l.level as number) >= 50), server.output().slice(-3_000)).toEqual([]);
    expect(await waitFor(() => groupMembers(launchedBrowser(server)).length === 0, { timeoutMs: 5_000, what: 'Chromium to be gone' })).toBe(true);
  });
});
