import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFor } from '../../src/queue/keys.js';
import { runCli } from '../cli/run-cli.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startServeProcess, type ServeProcess } from '../support/serve-process.js';
import { TEST_SETTINGS, uniquePrefix, waitFor } from '../support/service.js';

/**
 * `wcagai serve --no-worker` processes (API only) publish heartbeats of their own: their breakers
 * and memory show in the other processes' fleet views, but they never count as workers. Process A
 * sends alerts to a Slack webhook that fails, so its slack breaker opens (and only A's); process B
 * evaluates no alerts and is the one whose views are read.
 */

const TOKEN = 'api-heartbeat-admin-0123456789';
const SLACK_PATH = '/services/T0000/B0000/APIHEARTBEAT';
const auth = { authorization: `Bearer ${TOKEN}` };

type Serve = ServeProcess;

let redis: RedisServer;
let slack: FakeUpstream;
const prefix = uniquePrefix('apihb');
const keys = keysFor(prefix);
let a: Serve;
let b: Serve;
const started: Serve[] = [];
let conn: Redis;

async function startServe(extra: Record<string, string>): Promise<Serve> {
  const serve = await startServeProcess({ ...TEST_SETTINGS, REDIS_URL: redis.url, QUEUE_PREFIX: prefix, ADMIN_TOKEN: TOKEN, ...extra });
  started.push(serve);
  return serve;
}

async function get(server: Serve, path: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(`${server.base}${path}`, { headers });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

const pidsOf = (list: Array<{ pid: number }>) => list.map((p) => p.pid).sort((x, y) => x - y);

beforeAll(async () => {
  [redis, slack] = await Promise.all([startRedisServer(), startFakeUpstream()]);
  slack.on(SLACK_PATH, () => ({ status: 500, text: 'slack is down' }));
  conn = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  a = await startServe({
    ALERTS_INTERVAL: '250ms',
    ALERT_RESOLVE_AFTER: '500ms',
    SLACK_WEBHOOK_URL: slack.url(SLACK_PATH),
    SLACK_ATTEMPTS: '1',
    SLACK_BREAKER_FAILURES: '2',
    SLACK_BREAKER_HALF_OPEN: '10m',
  });
  b = await startServe({ ALERTS_ENABLED: 'false' });
});

afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.stop()));
  conn?.disconnect();
  await Promise.allSettled([redis?.close(), slack?.close()]);
});

describe('heartbeats of API-only processes', () => {
  it("shows an API process's breakers and memory in another process's fleet views, marked api, never as a worker", async () => {
    // A's slack breaker opens on its failed notifications (WORKERS_MISSING fires: no worker runs).
    const view = await waitFor(
      async () => {
        const res = await get(b, '/admin/breakers', auth);
        const entry = (res.json.apiProcesses as Array<Record<string, any>> | undefined)?.find((p) => p.pid === a.pid);
        return entry?.breakers.slack.state === 'OPEN' ? res.json : undefined;
      },
      { timeoutMs: 30_000, what: "A's open slack breaker in B's /admin/breakers" },
    );
    expect(view.process).toMatchObject({ role: 'api', breakers: { slack: { state: 'CLOSED' } } });
    expect(view.workers).toEqual([]);
    expect(view.apiProcesses).toHaveLength(1);
    expect(view.apiProcesses[0]).toMatchObject({ role: 'api', pid: a.pid, breakers: { slack: { state: 'OPEN' }, ai: { state: 'CLOSED' } } });
    const aId = view.apiProcesses[0].process as string;

    // /health/detailed: both API processes with their memory; no worker, so still degraded.
    const health = await get(b, '/health/detailed');
    expect(health.json.workers).toEqual([]);
    expect(health.json.status).toBe('degraded');
    expect(pidsOf(health.json.apiProcesses)).toEqual(pidsOf([a, b]));
    for (const p of health.json.apiProcesses) {
      expect(p.role).toBe('api');
      expect(p.memory.rss).toBeGreaterThan(0);
    }
    // GET /api/workers lists workers only.
    expect((await get(b, '/api/workers')).json.workers).toEqual([]);

    // `top`'s feed: A's breaker state in the fleet's breakers, no worker counted.
    const snapshot = (await get(b, '/admin/snapshot', auth)).json;
    expect(snapshot.workers).toEqual([]);
    const slackRow = snapshot.breakers.find((r: any) => r.name === 'slack');
    expect(slackRow.state).toBe('OPEN');
    expect(slackRow.processes).toContainEqual(expect.objectContaining({ process: aId, state: 'OPEN' }));
    expect(pidsOf(snapshot.health.apiProcesses)).toEqual(pidsOf([a, b]));

    // `wcagai breakers list` against B: A's rows, role api.
    const list = await runCli(['breakers', 'list', '--url', b.base, '--token', TOKEN], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    expect(list.code, list.stderr).toBe(0);
    const rows = list.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^PROCESS\s+ROLE\s+SERVICE\s+STATE\s+FAILURES\s+LAST FAILURE\s+OPENED AT$/);
    expect(rows.filter((r) => r.startsWith(`${aId} `) && /\sapi\s+slack\s+OPEN\s/.test(r))).toHaveLength(1);
    expect(rows.filter((r) => /\(answered\)\s+api\s+slack\s+CLOSED\s/.test(r))).toHaveLength(1);
    expect(rows).toHaveLength(1 + 2 * 5);
  });

  it('WORKERS_MISSING fires while only API processes send heartbeats; a heartbeat without a role (older version) counts as a worker', async () => {
    // Two API processes beat, and the alert still says no worker.
    expect(pidsOf((await get(b, '/health/detailed')).json.apiProcesses)).toEqual(pidsOf([a, b]));
    const firing = await waitFor(
      async () => ((await get(a, '/admin/alerts', auth)).json.firing as Array<Record<string, any>>).find((f) => f.id === 'workers_missing'),
      { timeoutMs: 10_000, what: 'WORKERS_MISSING to fire' },
    );
    expect(firing.value).toBe(0);

    // A worker of an older version: its heartbeat has no role.
    const id = 'old-host-4242-abcdef';
    const old = {
      concurrency: 2,
      active: 0,
      scansDone: 7,
      browserRestarts: 0,
      browserPid: 4343,
      breakers: { ai: { state: 'CLOSED', failures: 0, lastFailureAt: null, lastFailure: null, openedAt: null } },
      id,
      host: 'old-host',
      pid: 4242,
      memory: { rss: 300 * 2 ** 20, heapUsed: 90 * 2 ** 20 },
      startedAt: new Date(Date.now() - 60_000).toISOString(),
      at: new Date().toISOString(),
    };
    await conn.multi().set(keys.worker(id), JSON.stringify(old), 'PX', 60_000).sadd(keys.workers, id).exec();

    const workers = (await get(b, '/api/workers')).json.workers as Array<Record<string, any>>;
    expect(workers).toHaveLength(1);
    expect(workers[0]).toMatchObject({ id, role: 'worker', pid: 4242, scansDone: 7 });
    const breakers = (await get(b, '/admin/breakers', auth)).json;
    expect(breakers.workers.map((w: any) => [w.process, w.role])).toEqual([[id, 'worker']]);
    expect(breakers.apiProcesses.map((p: any) => p.pid)).toEqual([a.pid]);
    const health = (await get(b, '/health/detailed')).json;
    expect(health.workers.map((w: any) => [w.id, w.role])).toEqual([[id, 'worker']]);
    expect(pidsOf(health.apiProcesses)).toEqual(pidsOf([a, b]));
    // The alert clears: one worker is enough.
    await waitFor(async () => !((await get(a, '/admin/alerts', auth)).json.firing as Array<{ id: string }>).some((f) => f.id === 'workers_missing'), {
      timeoutMs: 10_000,
      what: 'WORKERS_MISSING to resolve',
    });
    await conn.multi().del(keys.worker(id)).srem(keys.workers, id).exec();
  });

  it('withdraws the heartbeat on a graceful shutdown; a killed process leaves one that expires', async () => {
    const c = await startServe({ ALERTS_ENABLED: 'false' });
    await waitFor(async () => pidsOf((await get(b, '/health/detailed')).json.apiProcesses ?? []).includes(c.pid), { timeoutMs: 10_000, what: "C's heartbeat" });

    await a.stop('SIGTERM');
    expect(pidsOf((await get(b, '/health/detailed')).json.apiProcesses)).toEqual(pidsOf([b, c]));
    expect((await get(b, '/admin/breakers', auth)).json.apiProcesses.map((p: any) => p.pid)).toEqual([c.pid]);

    await c.stop('SIGKILL');
    // Still listed until it expires (three beats of 5 s), then gone, and pruned from the set.
    expect(pidsOf((await get(b, '/health/detailed')).json.apiProcesses)).toEqual(pidsOf([b, c]));
    await waitFor(async () => pidsOf((await get(b, '/health/detailed')).json.apiProcesses).join() === String(b.pid), { timeoutMs: 30_000, intervalMs: 500, what: "the killed process's heartbeat to expire" });
    expect((await get(b, '/admin/breakers', auth)).json.apiProcesses).toEqual([]);
    expect(await conn.scard(`${keys.bullPrefix}:api-processes`)).toBe(1);
  });
});
