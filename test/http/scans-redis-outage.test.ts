import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, waitFor, type JsonResponse, type TestService } from '../support/service.js';

let redis: RedisServer;
let fixture: FixtureServer;
let svc: TestService;

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  for (const name of ['before', 'during-1', 'during-2', 'during-3', 'after']) fixture.html(`/${name}.html`, page(`<h1>${name}</h1>`));
  svc = await startTestService({ redisUrl: redis.url, worker: 1 });
});

afterAll(async () => {
  // Redis must be up for an orderly close; restart it if a failed test left it down.
  if (redis && redis.pid === null) await redis.restart().catch(() => undefined);
  await svc?.close();
  await redis?.close();
  await fixture?.close();
});

function expectUnavailable(res: JsonResponse, what: string): void {
  expect(res.status, `${what}: ${res.body}`).toBe(503);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.json).toMatchObject({ status: 503, code: 'REDIS_UNAVAILABLE', type: 'urn:wcagai:problem:redis-unavailable' });
  // The client is told to retry; what ioredis said (addresses, ports, connection states) stays in the log.
  expect(res.json.detail, what).toBe('the queue store (Redis) is not answering; try again after Retry-After seconds');
  expect(res.ms, `${what} took ${Math.round(res.ms)} ms`).toBeLessThan(1_000);
}

describe('Redis outage', () => {
  it('answers 503 problem+json within a second while Redis is down, and recovers by itself after it restarts', async () => {
    const before = await svc.post('/api/scans', { url: fixture.url('/before.html') }, { prefer: 'wait=20' });
    expect(before.status, before.body).toBe(200);
    expect(before.json.status).toBe('completed');
    const batch = await svc.post('/api/batches', { urls: [fixture.url('/before.html')] });
    // Its one page is cached: the batch has finished, and is answered as such.
    expect(batch.status, batch.body).toBe(200);
    expect(batch.json.status).toBe('completed');

    await redis.stop();
    // At once, and again while the client is backing off between reconnection attempts.
    expectUnavailable(await svc.post('/api/scans', { url: fixture.url('/during-1.html') }), 'submit right after the crash');
    await new Promise((r) => setTimeout(r, 1_500));
    expectUnavailable(await svc.post('/api/scans', { url: fixture.url('/during-2.html') }), 'submit during reconnection');
    expectUnavailable(await svc.post('/api/batches', { urls: [fixture.url('/during-3.html')] }), 'batch');
    expectUnavailable(await svc.get(`/api/scans/${before.json.id}`), 'read');
    expectUnavailable(await svc.get(`/api/batches/${batch.json.id}`), 'batch read');
    expectUnavailable(await svc.get('/api/queue'), 'queue');
    expectUnavailable(await svc.get('/api/workers'), 'workers');
    expect(svc.logs.events('http.error')).toEqual([]);
    // The operator's log keeps the cause the client was not shown.
    const problems = svc.logs.events('http.problem', (e) => e.code === 'REDIS_UNAVAILABLE');
    expect(problems.length).toBeGreaterThanOrEqual(7);
    expect(problems.every((e) => String(e.msg).startsWith('queue store unavailable: ') && String(e.msg).length > 'queue store unavailable: '.length)).toBe(true);

    await redis.restart();
    const started = Date.now();
    // Nobody restarts the service: its connections find Redis again on their own.
    const after = await waitFor(
      async () => {
        const res = await svc.post('/api/scans', { url: fixture.url('/after.html') });
        return res.status === 202 ? res : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'the API to accept scans again' },
    );
    const recoveredMs = Date.now() - started;
    expect(recoveredMs).toBeLessThan(10_000);
    // The worker recovered as well: the scan runs to completion.
    expect(await svc.finished(after.json.id, 30_000)).toMatchObject({ status: 'completed', attempts: 1 });
    // (The record is stored just before BullMQ moves the job out of active.)
    await waitFor(async () => {
      const queue = (await svc.get('/api/queue')).json;
      return queue.waiting === 0 && queue.active === 0 && queue.failed === 0;
    }, { timeoutMs: 5_000, what: 'an idle queue' });
    // Nothing submitted during the outage was scanned.
    for (const name of ['during-1', 'during-2', 'during-3']) expect(fixture.requestsTo(`/${name}.html`)).toHaveLength(0);
  });
});
