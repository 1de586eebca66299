import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { browserTree, waitForExit } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, waitFor, type TestService } from '../support/service.js';

let redis: RedisServer;
let fixture: FixtureServer;
const services: TestService[] = [];

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  fixture.html('/held.html', page('<h1>Held</h1>'), { delayMs: 3_000 });
  fixture.html('/late.html', page('<h1>Late</h1>'));
});

afterEach(async () => {
  await Promise.allSettled(services.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await redis?.close();
  await fixture?.close();
});

async function service(options: { worker?: number; prefix?: string; settings?: Record<string, string> } = {}): Promise<TestService> {
  const svc = await startTestService({ redisUrl: redis.url, ...options });
  services.push(svc);
  return svc;
}

describe('service.close()', () => {
  it('takes no new scan once it has begun, while a held Prefer: wait request is still answered', async () => {
    const closing = await service({ worker: 2, settings: { SHUTDOWN_TIMEOUT: '20s' } });
    const api = await service({ prefix: closing.prefix });
    // A real connection: app.close() waits for it (an injected request it would not see).
    const base = await closing.service.app!.listen({ port: 0, host: '127.0.0.1' });
    const held = fetch(`${base}/api/scans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=30' },
      body: JSON.stringify({ url: fixture.url('/held.html') }),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, any> }));
    await waitFor(() => fixture.requestsTo('/held.html').length > 0, { timeoutMs: 15_000, what: 'the held scan to be active' });

    const closed = closing.service.close(20_000);
    // Queued after shutdown began, through another API process; the closing worker has a free slot.
    const late = await api.post('/api/scans', { url: fixture.url('/late.html') });
    expect(late.status, late.body).toBe(202);

    const answer = await held;
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body).toMatchObject({ status: 'completed' });
    await closed;

    expect(fixture.requestsTo('/late.html')).toEqual([]);
    const job = await api.service.queue.getJob(late.json.id as string);
    expect(['waiting', 'prioritized']).toContain(await job!.getState());
    expect(job!.attemptsMade).toBe(0);
  });
});

describe('readiness and the browser', () => {
  it('answers 503 once Chromium has crashed, and 200 again when the browser is relaunched', async () => {
    const svc = await service({ worker: 1 });
    const ready = await svc.get('/health/ready');
    expect(ready.status, ready.body).toBe(200);
    const pid = svc.service.scanner!.stats().browserPid!;
    expect(pid).toEqual(expect.any(Number));

    // Chromium runs as its own process group, led by the browser.
    const tree = browserTree(pid);
    process.kill(-pid, 'SIGKILL');
    const down = await waitFor(
      async () => {
        const res = await svc.get('/health/ready');
        // A machine starved for a moment can make under-pressure answer 503 OVERLOADED first: not the answer looked for.
        return res.status === 503 && res.json.code !== 'OVERLOADED' ? res : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: '/health/ready to answer 503 for the browser' },
    );
    expect(down.json).toMatchObject({ checks: { redis: { status: 'up' }, browser: { status: 'down' } } });
    // The problem names the browser, not a Redis outage.
    expect(down.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(down.json).toMatchObject({ status: 503, code: 'BROWSER_CRASHED', type: 'urn:wcagai:problem:browser-crashed', detail: 'not ready: browser unavailable' });
    expect(await waitForExit(tree, 5_000)).toEqual([]);

    // Relaunched without waiting for a scan to need it: an idle worker becomes ready again.
    const back = await waitFor(
      async () => {
        const res = await svc.get('/health/ready');
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: '/health/ready to answer 200 again' },
    );
    expect(back.json).toMatchObject({ checks: { browser: { status: 'up', restarts: 1 } } });
    expect(svc.service.scanner!.stats().browserPid).not.toBe(pid);
    expect(svc.logs.events('browser.launch', (e) => e.reason === 'relaunch after crash')).toHaveLength(1);
  });
});
