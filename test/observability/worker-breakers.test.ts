import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reap, spawnWorker, type WorkerProcess } from '../queue/worker-process.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';

/**
 * An API process (in this test process) and a `wcagai worker` process (real Chromium) of one
 * deployment: the worker serves no /metrics, so its breakers reach Prometheus through the API,
 * read from its heartbeat. The worker runs in a process of its own: a heartbeat with this
 * process's host and pid is the API process's own (its embedded worker's), left out.
 */

const TOKEN = 'worker-breakers-admin-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let redis: RedisServer;
let api: TestService;
let worker: WorkerProcess;

beforeAll(async () => {
  redis = await startRedisServer();
  const prefix = uniquePrefix('wbreakers');
  const settings = { ADMIN_TOKEN: TOKEN, ALERTS_ENABLED: 'false' };
  api = await startTestService({ redisUrl: redis.url, prefix, settings });
  worker = spawnWorker(redis.url, prefix, { ...settings, WORKER_CONCURRENCY: '1' });
  await worker.waitForLog((e) => e.event === 'worker.start', 45_000);
});

afterAll(async () => {
  await Promise.allSettled([api?.close(), worker?.stop()]);
  await reap(worker?.browserPids ?? []);
  await redis?.close();
});

/** The `wcagai_worker_circuit_breaker_state` series of one scrape of the API, as `service process` → value. */
async function workerBreakerSeries(): Promise<Map<string, number>> {
  const body = (await api.get('/metrics')).body;
  const series = new Map<string, number>();
  for (const m of body.matchAll(/^wcagai_worker_circuit_breaker_state\{service="([^"]+)",process="([^"]+)"\} (\d+)$/gm)) series.set(`${m[1]} ${m[2]}`, Number(m[3]));
  return series;
}

describe('breakers of worker processes in /metrics', () => {
  it('exports each worker process breakers by service and process, follows their state, and drops a worker that left', async () => {
    const workerId = await waitFor(async () => ((await api.get('/api/workers')).json.workers as Array<{ id: string }>)[0]?.id, { what: 'the worker heartbeat' });
    const first = await workerBreakerSeries();
    expect([...first.keys()].sort()).toEqual(['ai', 'apollo', 'hubspot', 'pagerduty', 'slack'].map((s) => `${s} ${workerId}`));
    expect(first.get(`ai ${workerId}`)).toBe(0);

    // Isolated through the API: the worker applies it (pub/sub) and its next heartbeat says so (3).
    expect((await api.request({ method: 'POST', url: '/admin/breakers/ai/isolate', headers: auth })).status).toBe(200);
    await waitFor(async () => (await workerBreakerSeries()).get(`ai ${workerId}`) === 3, { timeoutMs: 30_000, what: 'the worker breaker isolated in /metrics' });
    expect((await workerBreakerSeries()).get(`hubspot ${workerId}`)).toBe(0);
    expect((await api.request({ method: 'POST', url: '/admin/breakers/ai/reset', headers: auth })).status).toBe(200);
    await waitFor(async () => (await workerBreakerSeries()).get(`ai ${workerId}`) === 0, { timeoutMs: 30_000, what: 'the worker breaker closed again in /metrics' });

    // A worker that shut down withdraws its heartbeat: its series leave the next scrape.
    await worker.stop();
    expect((await workerBreakerSeries()).size).toBe(0);
  });
});
