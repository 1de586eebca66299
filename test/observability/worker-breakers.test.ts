import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';

/**
 * An API process and a worker process (real Chromium) of one deployment: the worker serves no
 * /metrics, so its breakers reach Prometheus through the API, read from its heartbeat.
 */

const TOKEN = 'worker-breakers-admin-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let redis: RedisServer;
let api: TestService;
let worker: TestService;

beforeAll(async () => {
  redis = await startRedisServer();
  const prefix = uniquePrefix('wbreakers');
  const settings = { ADMIN_TOKEN: TOKEN, ALERTS_ENABLED: 'false' };
  api = await startTestService({ redisUrl: redis.url, prefix, settings });
  worker = await startTestService({ redisUrl: redis.url, prefix, api: false, worker: 1, settings });
});

afterAll(async () => {
  await Promise.allSettled([api?.close(), worker?.close()]);
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
    await worker.close();
    expect((await workerBreakerSeries()).size).toBe(0);
  });
});
