import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, waitFor, type JsonResponse, type TestService } from '../support/service.js';

/**
 * A Redis that hangs (SIGSTOP here; a network partition alike) keeps its TCP connections open and
 * answers nothing: unlike a crash, the producer's commands do not fail at once by themselves. The
 * API still answers 503 within a second, and recovers by itself once Redis answers again.
 */

let redis: RedisServer;
let svc: TestService;
let stopped = false;

// No worker: what is accepted stays queued, so nothing accepted can go missing unseen.
const target = (name: string) => `http://127.0.0.1:9/${name}`;

beforeAll(async () => {
  redis = await startRedisServer();
  // A short PING deadline (the default is 1.5 s) keeps the answers well inside one command timeout (2 s), which the old code paid twice or more.
  svc = await startTestService({ redisUrl: redis.url, settings: { REDIS_PING_TIMEOUT: '500ms' } });
});

afterAll(async () => {
  if (stopped && redis?.pid) process.kill(redis.pid, 'SIGCONT');
  await svc?.close();
  await redis?.close();
});

function hang(): void {
  process.kill(redis.pid!, 'SIGSTOP');
  stopped = true;
}

function resume(): void {
  process.kill(redis.pid!, 'SIGCONT');
  stopped = false;
}

// The producer's command timeout: the old answer came after two of them or more (rate limit, then admission).
const COMMAND_TIMEOUT_MS = 2_000;

function expectUnavailable(res: JsonResponse, what: string): void {
  expect(res.status, `${what}: ${res.body}`).toBe(503);
  expect(res.headers['content-type'], what).toBe('application/problem+json; charset=utf-8');
  expect(res.json, what).toMatchObject({ status: 503, code: 'REDIS_UNAVAILABLE', type: 'urn:wcagai:problem:redis-unavailable' });
  expect(res.headers['retry-after'], what).toBe('5');
  expect(res.ms, `${what} took ${Math.round(res.ms)} ms`).toBeLessThan(COMMAND_TIMEOUT_MS);
}

describe('Redis hung while the service runs', () => {
  it('answers 503 problem+json before a command timeout, says not ready, and accepts again once Redis answers, losing nothing accepted', async () => {
    const accepted: string[] = [];
    for (const name of ['before-1', 'before-2']) {
      const res = await svc.post('/api/scans', { url: target(name) });
      expect(res.status, res.body).toBe(202);
      accepted.push(res.json.id);
    }

    hang();
    // Sent at once: these wait on commands that will not be answered, and give up when the gate shuts.
    const first = await Promise.all([1, 2, 3].map((i) => svc.post('/api/scans', { url: target(`during-${i}`) })));
    first.forEach((res, i) => expectUnavailable(res, `submission ${i + 1} right after the hang`));
    expect(svc.logs.events('redis.unanswered').length).toBeGreaterThan(0);

    // Once the gate is shut: no command is sent, nothing waits for a timeout.
    const later = await svc.post('/api/scans', { url: target('during-4') });
    expectUnavailable(later, 'submission while shut');
    expectUnavailable(await svc.get(`/api/scans/${accepted[0]}`), 'read');
    expectUnavailable(await svc.post('/api/batches', { urls: [target('during-5')] }), 'batch');
    const ready = await svc.get('/health/ready');
    expect(ready.status, ready.body).toBe(503);
    expect(ready.json.checks.redis.status).toBe('down');
    expect(ready.ms, `readiness took ${Math.round(ready.ms)} ms`).toBeLessThan(COMMAND_TIMEOUT_MS);
    expect(svc.logs.events('http.error')).toEqual([]);

    resume();
    const after = await waitFor(
      async () => {
        const res = await svc.post('/api/scans', { url: target('after') });
        return res.status === 202 ? res : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'the API to accept scans again' },
    );
    accepted.push(after.json.id);
    expect(svc.logs.events('redis.answering').length).toBeGreaterThan(0);
    expect((await svc.get('/health/ready')).status).toBe(200);

    // Every accepted scan is still queued.
    for (const id of accepted) {
      const view = await svc.get(`/api/scans/${id}`);
      expect(view.status, view.body).toBe(200);
      expect(view.json.status).toBe('queued');
    }
  });
});
