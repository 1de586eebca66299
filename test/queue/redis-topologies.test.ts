import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removePrefix } from '../../src/app/stress.js';
import { loadConfig } from '../../src/config/load.js';
import type { WorkerHeartbeat } from '../../src/queue/heartbeat.js';
import { describeRedisTarget, redisTargetOf } from '../../src/queue/redis.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { redisCli, startCluster, startSentinelSetup, type ClusterSetup, type SentinelSetup } from '../support/redis-topologies.js';
import { startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';
import { reap, spawnWorker, type WorkerProcess } from './worker-process.js';

/**
 * The service on Redis Sentinel and on Redis Cluster, configured only through REDIS_SENTINELS /
 * REDIS_CLUSTER_NODES. REDIS_URL names a port nothing listens on, so a scan that completes proves
 * the connection went through the sentinel or the cluster, not the URL's host.
 */

const NOWHERE = 'redis://127.0.0.1:1';
const TOKEN = 'topology-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** Generous scan deadlines: the point here is the Redis topology, not speed on a loaded machine. */
const SLOW_MACHINE = { SCAN_TIMEOUT: '90s', NAVIGATION_TIMEOUT: '40s', AXE_TIMEOUT: '40s' };
const SCAN_WAIT = 150_000;

let fixture: FixtureServer;

beforeAll(async () => {
  fixture = await startFixtureServer();
  for (let i = 0; i < 4; i++) fixture.html(`/page-${i}.html`, page(`<h1>Page ${i}</h1><img src="x.png">`));
  fixture.route('/missing', (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page('<h1>Gone</h1>'));
  });
});

afterAll(async () => {
  await fixture?.close();
});

/** Keys of `prefix` on one server (SCAN through redis-cli). */
async function keysOn(port: number, prefix: string): Promise<string[]> {
  return (await redisCli(['-p', String(port), '--scan', '--pattern', `{${prefix}}:*`])).split('\n').filter(Boolean);
}

async function submit(svc: TestService, url: string): Promise<string> {
  const res = await svc.post('/api/scans', { url });
  expect(res.status, res.body).toBe(202);
  return res.json.id as string;
}

describe('target from the configuration', () => {
  it('builds a standalone, Sentinel or Cluster target and describes it without the password', () => {
    const url = 'redis://user:s3cret@10.0.0.9:6379/2';
    expect(redisTargetOf(loadConfig({ REDIS_URL: url }))).toEqual({ mode: 'standalone', url });
    const sentinel = redisTargetOf(loadConfig({ REDIS_URL: url, REDIS_SENTINELS: 's1:26379,[::1]:26380', REDIS_SENTINEL_NAME: 'queue' }));
    expect(sentinel).toMatchObject({ mode: 'sentinel', name: 'queue', sentinels: [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }] });
    const cluster = redisTargetOf(loadConfig({ REDIS_URL: 'rediss://:s3cret@x:6379', REDIS_CLUSTER_NODES: 'c1:7000,c2:7001' }));
    expect(cluster).toMatchObject({ mode: 'cluster', nodes: [{ host: 'c1', port: 7000 }, { host: 'c2', port: 7001 }] });
    expect(describeRedisTarget(redisTargetOf(loadConfig({ REDIS_URL: url })))).toBe('redis://***@10.0.0.9:6379/2');
    // A password holding '@' (ioredis reads the authority up to the last one).
    expect(describeRedisTarget(redisTargetOf(loadConfig({ REDIS_URL: 'redis://:p@ssw0rd@10.0.0.9:6379/2' })))).toBe('redis://***@10.0.0.9:6379/2');
    expect(describeRedisTarget(sentinel)).toBe('Sentinel master "queue" via s1:26379,[::1]:26380');
    expect(describeRedisTarget(cluster)).toBe('Redis Cluster via c1:7000,c2:7001');
  });
});

describe('Redis Sentinel (master, replica, one sentinel)', { timeout: 240_000 }, () => {
  let setup: SentinelSetup;
  let svc: TestService;

  beforeAll(async () => {
    setup = await startSentinelSetup({ replica: true, downAfterMs: 1_000 });
    svc = await startTestService({ redisUrl: NOWHERE, worker: 1, settings: { ...SLOW_MACHINE, REDIS_SENTINELS: setup.sentinel.address, REDIS_SENTINEL_NAME: setup.name } });
  }, 120_000);

  afterAll(async () => {
    await svc?.close();
    await setup?.close();
  });

  it('runs scans on the master the sentinel names', async () => {
    const ids = [await submit(svc, fixture.url('/page-0.html')), await submit(svc, fixture.url('/page-1.html'))];
    const views = await Promise.all(ids.map((id) => svc.finished(id, SCAN_WAIT)));
    expect(views.map((v) => v.status)).toEqual(['completed', 'completed']);
    expect(views[0]!.result.violations.length).toBeGreaterThan(0);
    // Written to the master, and replicated.
    expect((await keysOn(setup.master.port, svc.prefix)).length).toBeGreaterThan(0);
    await waitFor(async () => (await keysOn(setup.replica!.port, svc.prefix)).some((k) => k.endsWith(`:result:${ids[0]}`)), { what: 'the result on the replica' });
  });

  it('follows a failover: the replica is promoted and new scans complete on it', async () => {
    const before = await submit(svc, fixture.url('/page-2.html'));
    expect((await svc.finished(before, SCAN_WAIT)).status).toBe('completed');
    await waitFor(async () => (await keysOn(setup.replica!.port, svc.prefix)).some((k) => k.endsWith(`:result:${before}`)), { what: 'the result on the replica' });

    await setup.master.stop();
    await waitFor(async () => (await setup.masterPort()) === setup.replica!.port, { timeoutMs: 45_000, intervalMs: 250, what: 'the sentinel to promote the replica' });

    // The API fails fast while it reconnects (503), then accepts again.
    const res = await waitFor(
      async () => {
        const r = await svc.post('/api/scans', { url: fixture.url('/page-3.html') });
        return r.status === 202 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'the API to accept scans after the failover' },
    );
    expect((await svc.finished(res.json.id as string, SCAN_WAIT)).status).toBe('completed');
    // What was replicated before the failover is still there.
    expect((await svc.get(`/api/scans/${before}`)).json.status).toBe('completed');
    expect((await keysOn(setup.replica!.port, svc.prefix)).some((k) => k.endsWith(`:result:${res.json.id}`))).toBe(true);
  });
});

describe('Redis Cluster (three masters): serve --no-worker in process, `wcagai worker` as a child', { timeout: 240_000 }, () => {
  let cluster: ClusterSetup;
  let api: TestService;
  let worker: WorkerProcess;
  const prefix = uniquePrefix('cluster');

  beforeAll(async () => {
    cluster = await startCluster(3);
    const settings = { ...SLOW_MACHINE, REDIS_CLUSTER_NODES: cluster.seeds };
    api = await startTestService({ redisUrl: NOWHERE, prefix, settings: { ...settings, ADMIN_TOKEN: TOKEN } });
    worker = spawnWorker(NOWHERE, prefix, { ...settings, WORKER_CONCURRENCY: '2' });
    await worker.waitForLog((e) => e.event === 'worker.start', 120_000);
  }, 180_000);

  afterAll(async () => {
    await worker?.stop();
    await reap(worker?.browserPids ?? []);
    await api?.close();
    await cluster?.close();
  });

  it('lists the worker, completes scans, dead-letters a permanent failure and reports DLQ stats', async () => {
    const beats = await waitFor(
      async () => {
        const res = await api.get<{ workers: WorkerHeartbeat[] }>('/api/workers');
        return res.status === 200 && res.json.workers.length === 1 ? res.json.workers : undefined;
      },
      { timeoutMs: 20_000, what: 'the worker heartbeat' },
    );
    expect(beats[0]).toMatchObject({ pid: worker.pid, concurrency: 2 });

    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await submit(api, fixture.url(`/page-${i}.html`)));
    const missing = await submit(api, fixture.url('/missing'));
    const views = await Promise.all(ids.map((id) => api.finished(id, SCAN_WAIT)));
    expect(views.map((v) => v.status)).toEqual(['completed', 'completed', 'completed']);
    expect(await api.finished(missing, SCAN_WAIT)).toMatchObject({ status: 'failed', error: { code: 'HTTP_CLIENT_ERROR' } });

    const stats = await waitFor(
      async () => {
        const res = await api.get('/admin/dlq/stats', AUTH);
        return res.status === 200 && res.json.total === 1 ? res.json : undefined;
      },
      { timeoutMs: 20_000, what: 'the DLQ entry of the 404' },
    );
    expect(stats).toMatchObject({ total: 1, byCode: { HTTP_CLIENT_ERROR: 1 }, byHost: { [`127.0.0.1:${fixture.port}`]: 1 } });
    expect((await api.get('/api/queue')).json).toMatchObject({ waiting: 0, active: 0 });
    const report = await api.request({ method: 'GET', url: `/api/scans/${ids[0]}/report?format=sarif` });
    expect(report.status).toBe(200);

    // One hash tag per deployment: every key lives on the one master that owns its slot.
    const perNode = await Promise.all(cluster.nodes.map((n) => keysOn(n.port, prefix)));
    expect(perNode.filter((keys) => keys.length > 0)).toHaveLength(1);
  });

  it('removes a prefix with SCAN on every master', async () => {
    // A key of another deployment on each master would be left alone; ours are all removed.
    const target = redisTargetOf(loadConfig({ REDIS_URL: NOWHERE, REDIS_CLUSTER_NODES: cluster.seeds }));
    const other = uniquePrefix('keep');
    await redisCli(['-c', '-p', String(cluster.nodes[0]!.port), 'SET', `{${other}}:marker`, '1']);
    await worker.stop();
    await api.close();
    const { removed, left } = await removePrefix(target, prefix);
    expect(removed).toBeGreaterThan(0);
    expect(left).toBe(0);
    for (const node of cluster.nodes) expect(await keysOn(node.port, prefix)).toEqual([]);
    const kept = await Promise.all(cluster.nodes.map((n) => keysOn(n.port, other)));
    expect(kept.flat()).toEqual([`{${other}}:marker`]);
  });
});
