import { spawn } from 'node:child_process';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCENARIOS_DIR } from '../../src/diagnostics/scenario.js';
import type { StressResult } from '../../src/diagnostics/stress-report.js';
import { BIN, ROOT, runCli, type CliRun } from '../cli/run-cli.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';

/**
 * `wcagai stress` end to end: the compiled CLI starts its own stack (fixture site, API, workers,
 * Chromium) on a private Redis, drives it with autocannon and must leave no key behind.
 */

let redis: RedisServer;
let client: Redis;
let tmp: string;

beforeAll(async () => {
  [redis, tmp] = await Promise.all([startRedisServer(), mkdtemp(join(tmpdir(), 'wcagai-stress-'))]);
  client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await client?.quit().catch(() => undefined);
  await redis?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Short deadlines; no under-pressure 503s from a busy test machine. */
const ENV = { SETTLE_MAX: '1s', SETTLE_QUIET: '50ms', SCAN_TIMEOUT: '30s', MAX_EVENT_LOOP_DELAY: '30s', WORKER_CONCURRENCY: '2' };

async function scenarioFile(name: string, body: Record<string, unknown>): Promise<string> {
  const file = join(tmp, `${name}.json`);
  await writeFile(file, JSON.stringify({ name, ...body }));
  return file;
}

function stress(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['stress', ...args], { env: { REDIS_URL: redis.url, ...ENV, ...env }, timeoutMs: 240_000 });
}

/** Nothing of the run is left in Redis: not its prefix, and (a private server) nothing at all. */
async function expectNoKeysLeft(result: StressResult): Promise<void> {
  const prefix = String(result.stack?.prefix);
  expect(prefix).toMatch(/^stress-[0-9a-f]{10}$/);
  expect(result.stack?.keysLeft).toBe(0);
  expect(result.stack?.removedKeys).toBeGreaterThan(0);
  expect(await client.keys(`{${prefix}}:*`)).toEqual([]);
  expect(await client.dbsize()).toBe(0);
}

function expectOrdered(p: { p50: number | null; p90: number | null; p95: number | null; p99: number | null; max: number | null }): void {
  const values = [p.p50, p.p90, p.p95, p.p99, p.max];
  for (const v of values) expect(typeof v).toBe('number');
  for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThanOrEqual(values[i - 1]!);
}

describe('wcagai stress (self-contained stack)', () => {
  it('runs a short mixed load and reports every field with sane numbers', { timeout: 240_000 }, async () => {
    const file = await scenarioFile('short', {
      connections: 10,
      duration: '4s',
      wait: 60,
      mix: { scan: 3, enqueue: 1, status: 1, health: 1 },
      pages: ['/clean.html', '/form.html', '/spa.html'],
      recovery: { deadline: '90s' },
      thresholds: { http_req_failed: ['rate<0.5'], http_reqs: ['count>0'], queue_depth: ['max>=0'] },
    });
    const out = join(tmp, 'short-result.json');
    const run = await stress(['--scenario', file, '--json', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as StressResult;
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(r);

    expect(r).toMatchObject({ scenario: 'short', target: 'self', connections: 10, passed: true, interrupted: null });
    expect(r.durationMs).toBeGreaterThanOrEqual(3_500);
    expect(r.durationMs).toBeLessThan(30_000);
    expect(r.requests).toBeGreaterThan(0);
    const answered = Object.values(r.statusCodes).reduce((a, b) => a + b, 0);
    expect(r.requests).toBe(answered + r.errors.socket + r.timeouts);
    expect(r.throughput).toBeCloseTo(r.requests / (r.durationMs / 1_000), 1);
    expectOrdered(r.latency);
    expect(r.latency.count).toBe(answered);
    expect(r.scanDuration.count).toBe(r.scans.completed + r.scans.failed);
    if (r.scanDuration.count > 0) expectOrdered(r.scanDuration);
    expect(r.errorRate).toBeGreaterThanOrEqual(0);
    expect(r.errorRate).toBeLessThan(0.5);
    expect(r.rejected).toBeGreaterThanOrEqual(0);
    expect(r.timeouts).toBe(0);
    expect(r.byKind.scan.requests + r.byKind.enqueue.requests + r.byKind.status.requests + r.byKind.health.requests).toBe(answered);
    // On a busy machine no Prefer: wait scan may finish within 4 s: they were sent, and cut or answered.
    expect(r.byKind.scan.sent).toBeGreaterThan(0);
    expect(r.inFlightAtEnd).toBe(r.byKind.scan.sent + r.byKind.enqueue.sent + r.byKind.status.sent + r.byKind.health.sent - r.requests);
    expect(r.server.samples).toBeGreaterThanOrEqual(2);
    expect(r.server.rssMb.max).toBeGreaterThan(30);
    expect(r.server.chromiumRssMb?.max).toBeGreaterThan(30);
    expect(r.breakers).toMatchObject({ ai: expect.any(String) });
    expect(r.dlq).toEqual({ start: 0, end: 0, growth: 0 });
    expect(r.recovery.drainedMs).toEqual(expect.any(Number));
    expect(r.recovery.drainedMs!).toBeLessThanOrEqual(90_000);
    expect(r.recovery.healthyMs).toEqual(expect.any(Number));
    expect(r.thresholds).toEqual([
      { metric: 'http_req_failed', expression: 'rate<0.5', actual: r.errorRate, passed: true },
      { metric: 'http_reqs', expression: 'count>0', actual: r.requests, passed: true },
      { metric: 'queue_depth', expression: 'max>=0', actual: r.server.queueDepth.max, passed: true },
    ]);
    await expectNoKeysLeft(r);
  });

  it('exits 99 with a table naming the failed threshold when one fails', { timeout: 240_000 }, async () => {
    // API only (no worker, no browser): health reads cannot fail, the threshold says they must not happen.
    const file = await scenarioFile('must-fail', {
      connections: 2,
      duration: '2s',
      mix: { health: 1 },
      pages: ['/clean.html'],
      stack: { workers: 0 },
      recovery: { deadline: '1s' },
      thresholds: { http_reqs: ['count<1'], http_req_failed: ['rate<1'] },
    });
    const run = await stress(['--scenario', file]);
    expect(run.code, run.stderr).toBe(99);
    expect(run.stdout).toMatch(/^http_reqs count<1\s+\d+\s+FAILED$/m);
    expect(run.stdout).toMatch(/^http_req_failed rate<1\s+0\s+ok$/m);
    expect(run.stdout).toMatch(/^FAILED: 1 threshold\(s\) failed$/m);
    expect(await client.dbsize()).toBe(0);
  });

  it('enqueue-burst at MAX_QUEUE_DEPTH 5: admission answers 503 with Retry-After, and nothing else fails', { timeout: 240_000 }, async () => {
    const shipped = JSON.parse(await readFile(join(SCENARIOS_DIR, 'enqueue-burst.json'), 'utf8')) as Record<string, any>;
    const file = await scenarioFile('enqueue-burst-small', {
      ...shipped,
      name: 'enqueue-burst-small',
      connections: 20,
      duration: '4s',
      stack: { settings: { MAX_QUEUE_DEPTH: '5' } },
      recovery: { deadline: '120s' },
      thresholds: { http_req_failed: ['rate==0'], http_req_rejected: ['count>0'], http_req_timeouts: ['count==0'], queue_depth: ['max<=5'] },
    });
    const run = await stress(['--scenario', file, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as StressResult;
    expect(r.stack?.maxQueueDepth).toBe(5);
    expect(r.statusCodes['503']).toBeGreaterThan(0);
    expect(r.statusCodes['202']).toBeGreaterThan(0);
    expect(r.rejected).toBe(r.statusCodes['503']);
    expect(Object.keys(r.statusCodes).filter((c) => !['200', '202', '503'].includes(c))).toEqual([]);
    expect(r.errorRate).toBe(0);
    expect(r.errors).toMatchObject({ http: 0, socket: 0, timeouts: 0 });
    expect(r.recovery.drainedMs).toEqual(expect.any(Number));
    await expectNoKeysLeft(r);
  });
});

describe('wcagai stress interrupted', () => {
  it('removes the private prefix when stopped by SIGTERM during the load, even when a second SIGTERM follows', { timeout: 240_000 }, async () => {
    // API only (no worker): the queue never drains, so without the signal the recovery wait would last its whole deadline.
    const file = await scenarioFile('interrupted', {
      connections: 4,
      duration: '120s',
      mix: { enqueue: 1 },
      pages: ['/clean.html'],
      stack: { workers: 0 },
      recovery: { deadline: '120s' },
      thresholds: { http_reqs: ['count>0'] },
    });
    const child = spawn(process.execPath, [BIN, 'stress', '--scenario', file, '--json'], { cwd: ROOT, env: { ...process.env, REDIS_URL: redis.url, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      // The load is running once scans wait in the private queue.
      const queued = (keys: string[]) => keys.filter((k) => /^\{stress-[0-9a-f]+\}:scans:(wait|prioritized)$/.test(k));
      let waiting: string[] = [];
      while (waiting.length === 0 && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 100));
        waiting = queued(await client.keys('*'));
      }
      expect(waiting, stderr).toHaveLength(1);
      child.kill('SIGTERM');
      // An impatient operator: the second signal must not cut the cleanup short.
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      expect({ code, signal }, stderr).toEqual({ code: 1, signal: null });
      expect(stderr).toMatch(/^wcagai stress: interrupted by SIGTERM after [\d.]+ s of load: no verdict$/m);
      const r = JSON.parse(stdout) as StressResult;
      expect(r).toMatchObject({ interrupted: 'SIGTERM', passed: false });
      expect(r.thresholds).toEqual([{ metric: 'http_reqs', expression: 'count>0', actual: r.requests, passed: true }]);
      expect(r.requests).toBeGreaterThan(0);
      expect(r.recovery.drainedMs).toBeNull();
      await expectNoKeysLeft(r);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });
});

describe('wcagai stress tool errors', () => {
  it('refuses a bad scenario in one line naming the file and field, before starting anything', async () => {
    const file = await scenarioFile('broken', { connections: 0, duration: '5s', pages: ['/clean.html'], thresholds: { scan_duration: ['p95<1'] } });
    const run = await stress(['--scenario', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/broken\.json: connections: expected an integer >= 1; thresholds\.scan_duration\[0\]: "p95<1": expected an aggregation/);
    const missing = await stress(['--scenario', join(tmp, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.json: cannot read the scenario: ENOENT/);
  });

  it('refuses an empty --out (an unset variable) in one line, before starting anything', async () => {
    const run = await stress(['--out', '']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim()).toBe('wcagai: --out expects a file name, got ""');
  });

  it('reports an unreachable --url target in one line', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const p = (server.address() as { port: number }).port;
        server.close(() => resolve(p));
      });
    });
    const run = await stress(['--concurrent=5', '--duration', '2s', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(new RegExp(`target http://127\\.0\\.0\\.1:${port} is unreachable: ECONNREFUSED`));
    const both = await stress(['--duration', '2s', '--amount', '5']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/cannot be used with/);
  });
});
