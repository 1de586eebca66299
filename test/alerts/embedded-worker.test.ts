import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { reap, spawnWorker, type WorkerProcess } from '../queue/worker-process.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startServeProcess, type ServeProcess } from '../support/serve-process.js';
import { TEST_SETTINGS, uniquePrefix, waitFor } from '../support/service.js';

/**
 * `wcagai serve` with its embedded worker publishes the worker's heartbeat (another id, carrying
 * the serve process's id) with the breakers of the serve process itself: one registry. Its fleet views
 * (/admin/breakers, /metrics, alerts) list those breakers and that memory once, as its own, and a
 * separate `wcagai worker` process's as another process's. S sends alerts to a Slack webhook that
 * fails, so its slack breaker opens (and only S's); every process uses far more than 1 MB, so RSS fires.
 */

const TOKEN = 'embedded-worker-admin-0123456789';
const SLACK_PATH = '/services/T0000/B0000/EMBEDDEDWORKER';
const auth = { authorization: `Bearer ${TOKEN}` };
const SERVICES = ['ai', 'apollo', 'hubspot', 'pagerduty', 'slack'];

let redis: RedisServer;
let slack: FakeUpstream;
let serve: ServeProcess;
let worker: WorkerProcess;

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; json: Record<string, any> }> {
  const res = await fetch(`${serve.base}${path}`, { headers });
  const body = await res.text();
  return { status: res.status, body, json: /json/.test(res.headers.get('content-type') ?? '') ? (JSON.parse(body) as Record<string, any>) : {} };
}

beforeAll(async () => {
  [redis, slack] = await Promise.all([startRedisServer(), startFakeUpstream()]);
  slack.on(SLACK_PATH, () => ({ status: 500, text: 'slack is down' }));
  const prefix = uniquePrefix('embedded');
  serve = await startServeProcess(
    {
      ...TEST_SETTINGS,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      ADMIN_TOKEN: TOKEN,
      ALERTS_INTERVAL: '250ms',
      ALERT_RSS_THRESHOLD: '1',
      SLACK_WEBHOOK_URL: slack.url(SLACK_PATH),
      SLACK_ATTEMPTS: '1',
      SLACK_BREAKER_FAILURES: '1',
      SLACK_BREAKER_HALF_OPEN: '10m',
    },
    ['--workers', '1'],
  );
  worker = spawnWorker(redis.url, prefix, { WORKER_CONCURRENCY: '1', ALERTS_ENABLED: 'false' });
  await worker.waitForLog((e) => e.event === 'worker.start', 45_000);
});

afterAll(async () => {
  await Promise.allSettled([serve?.stop(), worker?.stop()]);
  await reap(worker?.browserPids ?? []);
  await Promise.allSettled([redis?.close(), slack?.close()]);
});

/** The ids of the two worker heartbeats: the embedded worker's (this process's pid) and the separate worker's. */
async function workerIds(): Promise<{ embedded: string; remote: string }> {
  const beats = await waitFor(
    async () => {
      const workers = (await get('/api/workers')).json.workers as Array<{ id: string; pid: number }>;
      return workers.length === 2 ? workers : undefined;
    },
    { timeoutMs: 30_000, what: 'two worker heartbeats' },
  );
  expect(beats.map((b) => b.pid).sort((x, y) => x - y)).toEqual([serve.pid, worker.pid].sort((x, y) => x - y));
  return { embedded: beats.find((b) => b.pid === serve.pid)!.id, remote: beats.find((b) => b.pid === worker.pid)!.id };
}

describe('serve with its embedded worker, and a separate worker process', () => {
  it('GET /admin/breakers and `wcagai breakers list` show its breakers once, as its own, and the other worker as remote', async () => {
    const { remote } = await workerIds();
    const view = await waitFor(
      async () => {
        const res = await get('/admin/breakers', auth);
        return res.json.process?.breakers.slack.state === 'OPEN' && res.json.workers.some((w: any) => w.pid === worker.pid) ? res.json : undefined;
      },
      { timeoutMs: 30_000, what: "S's open slack breaker and the worker's breakers in /admin/breakers" },
    );
    expect(view.process.role).toBe('worker');
    expect(Object.keys(view.process.breakers).sort()).toEqual(SERVICES);
    expect(view.workers.map((w: any) => [w.process, w.pid])).toEqual([[remote, worker.pid]]);
    expect(view.workers[0]).toMatchObject({ role: 'worker', breakers: { slack: { state: 'CLOSED' } } });
    expect(Object.keys(view.workers[0].breakers).sort()).toEqual(SERVICES);
    expect(view.apiProcesses).toEqual([]);

    // Five rows for this process, five for the other worker, none twice.
    const list = await runCli(['breakers', 'list', '--url', serve.base, '--token', TOKEN], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    expect(list.code, list.stderr).toBe(0);
    const rows = list.stdout.trim().split('\n').slice(1);
    expect(rows).toHaveLength(2 * SERVICES.length);
    expect(rows.filter((r) => /\sslack\s+OPEN\s/.test(r))).toHaveLength(1);
  });

  it('/metrics has its own breakers in wcagai_circuit_breaker_state and only the other worker in wcagai_worker_circuit_breaker_state', async () => {
    const { remote } = await workerIds();
    const metrics = await waitFor(
      async () => {
        const body = (await get('/metrics')).body;
        return body.includes(`process="${remote}"`) && /^wcagai_circuit_breaker_state\{service="slack"\} 2$/m.test(body) ? body : undefined;
      },
      { timeoutMs: 30_000, what: "the worker's breakers and S's open slack breaker in /metrics" },
    );
    const workerSeries = [...metrics.matchAll(/^wcagai_worker_circuit_breaker_state\{service="([^"]+)",process="([^"]+)"\} (\d+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(workerSeries.sort()).toEqual(SERVICES.map((s) => `${s} ${remote}`));
  });

  it('alerts see its open breaker and its memory once, and both workers', async () => {
    const { remote } = await workerIds();
    const ownId = (await get('/admin/breakers', auth)).json.process.id as string;
    const firing = await waitFor(
      async () => {
        const list = (await get('/admin/alerts', auth)).json.firing as Array<Record<string, any>>;
        const rss = list.find((f) => f.id === 'rss');
        const open = list.find((f) => f.id === 'breaker_open');
        return rss?.details.processes.some((p: { id: string }) => p.id === remote) && open ? { rss, open, ids: list.map((f) => f.id as string) } : undefined;
      },
      { timeoutMs: 30_000, what: 'RSS (with the worker process) and BREAKER_OPEN to fire' },
    );
    expect(firing.open.details.open).toEqual([`slack@${ownId}`]);
    expect(firing.rss.details.processes.map((p: { id: string }) => p.id).sort()).toEqual([ownId, remote].sort());
    expect(firing.rss.summary).toMatch(/ and 1 more \(threshold 1 MB\)$/);
    expect(firing.ids).not.toContain('workers_missing');
  });
});
