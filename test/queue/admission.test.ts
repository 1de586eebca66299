import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { cacheKeyOf } from '../../src/queue/job.js';
import { workerConnection } from '../../src/queue/redis.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { jobCounts, startTestService, totalJobs, waitFor, type TestService } from '../support/service.js';

// No page is scanned in this file (its one worker is a bare BullMQ worker failing attempts): the targets need not exist.
const target = (n: number | string) => `http://127.0.0.1:9/page-${n}.html`;

let redis: RedisServer;
const services: TestService[] = [];

async function apiOnly(settings: Record<string, string> = {}): Promise<TestService> {
  const svc = await startTestService({ redisUrl: redis.url, settings: { MAX_QUEUE_DEPTH: '5', ...settings } });
  services.push(svc);
  return svc;
}

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await Promise.allSettled(services.map((s) => s.close()));
  await redis?.close();
});

/** Makes `queue.addBulk` take `ms` longer, as on a busy Redis. */
function slowAdds(queue: TestService['service']['queue'], ms: number): void {
  const addBulk = queue.addBulk.bind(queue);
  queue.addBulk = async (jobs) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return addBulk(jobs);
  };
}

function expectQueueFull(res: { status: number; headers: Record<string, unknown>; json: Record<string, any> }): void {
  expect(res.status).toBe(503);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.headers['retry-after']).toBe('5');
  expect(res.json).toMatchObject({ status: 503, code: 'QUEUE_FULL', type: 'urn:wcagai:problem:queue-full' });
  expect(res.json.detail).toMatch(/limit is 5/);
}

describe('admission control (MAX_QUEUE_DEPTH 5, no worker)', () => {
  it('queues five scans, refuses the sixth with 503 and Retry-After, and reports the queue as critical', async () => {
    const svc = await apiOnly();
    for (let i = 0; i < 5; i++) {
      const res = await svc.post('/api/scans', { url: target(i) });
      expect(res.status, res.body).toBe(202);
      // Each admitted request holds its in-flight marker (what dedup answers from).
      expect(await svc.service.redis.get(svc.service.keys.inflight(cacheKeyOf(target(i), DEFAULT_SCAN_OPTIONS)))).toBe(res.json.id);
    }
    const sixth = await svc.post('/api/scans', { url: target(5) });
    expectQueueFull(sixth);
    expect(await totalJobs(svc.service)).toBe(5);
    // The refused request left no in-flight marker that would make its next try look deduplicated.
    expect(await svc.service.redis.exists(svc.service.keys.inflight(cacheKeyOf(target(5), DEFAULT_SCAN_OPTIONS)))).toBe(0);

    const queue = await svc.get('/api/queue');
    expect(queue.status).toBe(200);
    expect(queue.json).toMatchObject({ waiting: 5, active: 0, maxCapacity: 5, utilizationPercent: 100, state: 'critical', paused: false });

    // A request already in the queue is still answered (it costs no room), without a new job.
    const again = await svc.post('/api/scans', { url: target(2) });
    expect(again.status).toBe(202);
    expect(again.json.deduplicated).toBe(true);
    // A batch that does not fit is refused whole.
    const batch = await svc.post('/api/batches', { urls: [target('b1'), target('b2')] });
    expectQueueFull(batch);
    expect(await totalJobs(svc.service)).toBe(5);
    expect(await svc.service.redis.keys(svc.service.keys.batch('*'))).toEqual([]);
  });

  it('reports utilization below the limit as healthy, then warning', async () => {
    const svc = await apiOnly();
    expect((await svc.get('/api/queue')).json).toMatchObject({ waiting: 0, utilizationPercent: 0, state: 'healthy' });
    for (let i = 0; i < 4; i++) expect((await svc.post('/api/scans', { url: target(i) })).status).toBe(202);
    expect((await svc.get('/api/queue')).json).toMatchObject({ waiting: 4, utilizationPercent: 80, state: 'warning' });
  });

  it('counts a scan waiting for its retry as queued: the queue never grows past the limit when the retries come back', async () => {
    // A long backoff: the failed first attempts wait in BullMQ's delayed set for the rest of the test.
    const svc = await apiOnly({ SCAN_ATTEMPTS: '2', SCAN_BACKOFF: '10m' });
    const { keys } = svc.service;
    const retrying: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await svc.post('/api/scans', { url: target(`retry-${i}`) });
      expect(res.status, res.body).toBe(202);
      retrying.push(res.json.id as string);
    }
    // A worker whose first attempts fail as a site answering 503 would: both scans wait for their retry.
    const connection = workerConnection(redis.url);
    const failing = new Worker(keys.queueName, async () => {
      throw new Error('HTTP_SERVER_ERROR: answered 503');
    }, { connection, prefix: keys.bullPrefix, concurrency: 2 });
    try {
      await waitFor(async () => (await jobCounts(svc.service)).delayed === 2, { what: 'both scans to wait for their retry' });
    } finally {
      await failing.close();
      connection.disconnect();
    }
    for (const id of retrying) expect((await svc.get(`/api/scans/${id}`)).json).toMatchObject({ status: 'queued', attempts: 1 });

    // Two of the five places are taken by the scans that will come back: three more fit, not five.
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await svc.post('/api/scans', { url: target(`after-retry-${i}`) }));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 503, 503]);
    expectQueueFull(answers[3]!);
    const counts = await jobCounts(svc.service);
    expect((counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0)).toBe(5);
    // The queue's figures say so as admission control does.
    expect((await svc.get('/api/queue')).json).toMatchObject({ waiting: 3, delayed: 2, utilizationPercent: 100, state: 'critical' });
  });

  it('admits exactly MAX_QUEUE_DEPTH of many concurrent submissions', async () => {
    const svc = await apiOnly();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => svc.post('/api/scans', { url: target(`c${i}`) })));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(5);
    expect(statuses.filter((s) => s === 503)).toHaveLength(7);
    expect(await totalJobs(svc.service)).toBe(5);
    // Admitted jobs hold a reservation only until they are in the queue.
    expect(await svc.service.redis.zcard(svc.service.keys.admitting)).toBe(0);
  });

  it('admits concurrent batches only while they fit', async () => {
    const svc = await apiOnly();
    const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => svc.post('/api/batches', { urls: [target(`b${i}a`), target(`b${i}b`)] })));
    // Two batches of two fit in five; a third would make six.
    expect(answers.filter((a) => a.status === 202)).toHaveLength(2);
    expect(answers.filter((a) => a.status === 503)).toHaveLength(2);
    expect(await totalJobs(svc.service)).toBe(4);
  });

  it('does not let an in-flight marker whose job is gone capture new requests, single or batched', async () => {
    // A job failed by BullMQ itself (stall limit) or removed never wrote a final record: its marker lingers.
    const svc = await apiOnly();
    const { redis: r, keys } = svc.service;
    const marker = (n: string) => keys.inflight(cacheKeyOf(target(n), DEFAULT_SCAN_OPTIONS));
    await r.set(marker('stale-1'), 'scan_gone1', 'PX', 60_000);
    await r.set(marker('stale-2'), 'scan_gone2', 'PX', 60_000);

    const single = await svc.post('/api/scans', { url: target('stale-1') });
    expect(single.status, single.body).toBe(202);
    expect(single.json.id).not.toBe('scan_gone1');
    expect(single.json.deduplicated).toBeUndefined();
    expect(await r.get(marker('stale-1'))).toBe(single.json.id);

    const batch = await svc.post('/api/batches', { urls: [target('stale-2'), target('fresh-3')] });
    expect(batch.status, batch.body).toBe(202);
    const view = await svc.get(`/api/batches/${batch.json.id}`);
    expect(view.json.scans.map((s: { id: string }) => s.id)).not.toContain('scan_gone2');
    expect(view.json.counts).toEqual({ queued: 2, active: 0, completed: 0, failed: 0 });
    expect(await r.get(marker('stale-2'))).toBe(view.json.scans[0].id);
    expect(await totalJobs(svc.service)).toBe(3);
    expect(await r.zcard(keys.admitting)).toBe(0);
  });

  it('a batch refused when its stale markers are decided again leaves no marker on the ids it never added', async () => {
    const svc = await apiOnly();
    const { redis: r, keys } = svc.service;
    const marker = (n: string) => keys.inflight(cacheKeyOf(target(n), DEFAULT_SCAN_OPTIONS));
    for (let i = 0; i < 4; i++) expect((await svc.post('/api/scans', { url: target(`full-${i}`) })).status).toBe(202);
    await r.set(marker('f-stale'), 'scan_gone5', 'PX', 60_000);
    // The first decision admits f-new (the fifth place); f-stale, decided again once its marker is
    // judged stale, finds no room left: the batch is refused whole.
    const res = await svc.post('/api/batches', { urls: [target('f-new'), target('f-stale')] });
    expectQueueFull(res);
    expect(await totalJobs(svc.service)).toBe(4);
    expect(await r.exists(marker('f-new'))).toBe(0);
    expect(await r.exists(marker('f-stale'))).toBe(0);
    expect(await r.zcard(keys.admitting)).toBe(0);
    // The next try of f-new is a new scan as any other: it takes the last place.
    const again = await svc.post('/api/scans', { url: target('f-new') });
    expect(again.status, again.body).toBe(202);
    expect(again.json.deduplicated).toBeUndefined();
  });

  it('an add whose answer was lost (the job did get in) is joined by the client\'s retry, not queued twice: single and batched', async () => {
    const svc = await apiOnly();
    const { queue, redis: r, keys } = svc.service;
    // The add reaches Redis but its answer does not (a command timeout): once for queue.add, once for addBulk.
    const add = queue.add.bind(queue);
    const addBulk = queue.addBulk.bind(queue);
    queue.add = (async (...args: Parameters<typeof add>) => {
      queue.add = add;
      await add(...args);
      throw new Error('Command timed out');
    }) as typeof add;
    queue.addBulk = (async (...args: Parameters<typeof addBulk>) => {
      queue.addBulk = addBulk;
      await addBulk(...args);
      throw new Error('Command timed out');
    }) as typeof addBulk;

    const lost = await svc.post('/api/scans', { url: target('lost-1') });
    expect(lost.status, lost.body).toBe(503);
    expect(await totalJobs(svc.service)).toBe(1);
    const retry = await svc.post('/api/scans', { url: target('lost-1') });
    expect(retry.status, retry.body).toBe(202);
    expect(retry.json.deduplicated).toBe(true);
    expect(await totalJobs(svc.service)).toBe(1);

    const lostBatch = await svc.post('/api/batches', { urls: [target('lost-2'), target('lost-3')] });
    expect(lostBatch.status, lostBatch.body).toBe(503);
    expect(await totalJobs(svc.service)).toBe(3);
    const retryBatch = await svc.post('/api/batches', { urls: [target('lost-2'), target('lost-3')] });
    expect(retryBatch.status, retryBatch.body).toBe(202);
    expect(await totalJobs(svc.service)).toBe(3);
    expect(await r.zcard(keys.admitting)).toBe(0);
  });

  it('decides submissions of one event-loop turn together, each admitted, deduplicated and answered on its own', async () => {
    const svc = await apiOnly();
    const { producer, redis: r, keys, queue } = svc.service;
    const marker = (n: string) => keys.inflight(cacheKeyOf(target(n), DEFAULT_SCAN_OPTIONS));
    await r.set(marker('turn-stale'), 'scan_gone3', 'PX', 60_000);
    // Seven calls in one synchronous stretch: two pairs of duplicates, a stale marker, three distinct URLs.
    const urls = ['turn-a', 'turn-a', 'turn-b', 'turn-stale', 'turn-b', 'turn-c', 'turn-d'];
    const settled = await Promise.allSettled(urls.map((u, i) => producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: i === 5 ? 'high' : 'normal', requestId: `turn-${i}` })));
    const answers = settled.map((s) => (s.status === 'fulfilled' ? s.value : { error: (s.reason as { code?: string }).code }));
    // Room for five: a, b, stale (a new job, not the gone one), c, d in order; each duplicate joins its first.
    expect(answers[0]).toMatchObject({ outcome: 'new' });
    expect(answers[1]).toEqual({ id: (answers[0] as { id: string }).id, outcome: 'inflight' });
    expect(answers[2]).toMatchObject({ outcome: 'new' });
    expect(answers[4]).toEqual({ id: (answers[2] as { id: string }).id, outcome: 'inflight' });
    expect(answers[3]).toMatchObject({ outcome: 'new' });
    expect((answers[3] as { id: string }).id).not.toBe('scan_gone3');
    expect(answers[5]).toMatchObject({ outcome: 'new' });
    expect(answers[6]).toMatchObject({ outcome: 'new' });
    expect(await totalJobs(svc.service)).toBe(5);
    // Each job carries its own request id and priority.
    const job = await queue.getJob((answers[5] as { id: string }).id);
    expect(job?.data).toMatchObject({ url: target('turn-c'), requestId: 'turn-5' });
    expect(job?.opts.priority).toBeLessThan((await queue.getJob((answers[6] as { id: string }).id))!.opts.priority!);
    expect(await r.zcard(keys.admitting)).toBe(0);

    // The queue is full now: a turn of new URLs is refused one by one, a duplicate of a queued job still joins it.
    const more = await Promise.allSettled([producer.submit(target('turn-e'), DEFAULT_SCAN_OPTIONS, { priority: 'normal' }), producer.submit(target('turn-a'), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })]);
    expect(more[0]).toMatchObject({ status: 'rejected', reason: { code: 'QUEUE_FULL' } });
    expect(more[1]).toEqual({ status: 'fulfilled', value: answers[1] });
    expect(await totalJobs(svc.service)).toBe(5);
  });

  it('in one turn, twins on one stale marker make one job and twins of a refused request are refused', async () => {
    const svc = await apiOnly();
    const { producer, redis: r, keys } = svc.service;
    await r.set(keys.inflight(cacheKeyOf(target('twin-stale'), DEFAULT_SCAN_OPTIONS)), 'scan_gone4', 'PX', 60_000);
    const turn = async (urls: string[]) => {
      const settled = await Promise.allSettled(urls.map((u) => producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })));
      return settled.map((s) => (s.status === 'fulfilled' ? s.value : { error: (s.reason as { code?: string }).code }));
    };
    // The stale marker's twins: the first gets a new job, the second joins it.
    const first = await turn(['twin-stale', 'twin-stale', 'x1']);
    expect(first[0]).toMatchObject({ outcome: 'new' });
    expect((first[0] as { id: string }).id).not.toBe('scan_gone4');
    expect(first[1]).toEqual({ id: (first[0] as { id: string }).id, outcome: 'inflight' });
    expect(first[2]).toMatchObject({ outcome: 'new' });
    expect(await totalJobs(svc.service)).toBe(2);
    // x2 to x4 fill the last three places; x5 is refused at the limit, and so is its twin (no job to join).
    const second = await turn(['x2', 'x3', 'x4', 'x5', 'x5']);
    for (const i of [0, 1, 2]) expect(second[i]).toMatchObject({ outcome: 'new' });
    expect(second[3]).toEqual({ error: 'QUEUE_FULL' });
    expect(second[4]).toEqual({ error: 'QUEUE_FULL' });
    expect(await totalJobs(svc.service)).toBe(5);
    expect(await r.zcard(keys.admitting)).toBe(0);
  });

  it('a turn larger than one decision group: a twin decided in a later group joins the job an earlier group is still adding', async () => {
    const svc = await apiOnly({ MAX_QUEUE_DEPTH: '1000' });
    const { producer, redis: r, keys, queue } = svc.service;
    // 60 pages, then each again: the twins of the first pages are decided in the next groups, while
    // their jobs are being added (an in-flight marker with no job yet is not a stale one). Adds are
    // made slow, as on a busy Redis, so the twins are decided before their jobs are in.
    slowAdds(queue, 200);
    const pages = Array.from({ length: 60 }, (_, i) => `group-${i}`);
    const settled = await Promise.allSettled([...pages, ...pages].map((u) => producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })));
    const answers = settled.map((s) => (s.status === 'fulfilled' ? s.value : { error: (s.reason as { code?: string }).code }));
    for (const [i] of pages.entries()) {
      expect(answers[i]).toMatchObject({ outcome: 'new' });
      expect(answers[60 + i]).toEqual({ id: (answers[i] as { id: string }).id, outcome: 'inflight' });
    }
    expect(await totalJobs(svc.service)).toBe(60);
    expect(await r.zcard(keys.admitting)).toBe(0);
  });

  it('a twin of a batch page decided while the batch still waits on another add joins the batch\'s job: the page is not queued twice', async () => {
    const svc = await apiOnly({ MAX_QUEUE_DEPTH: '1000' });
    const { producer, redis: r, keys, queue } = svc.service;
    slowAdds(queue, 3_500);
    // A full group: its add starts at once and takes 3.5 s.
    const pages = Array.from({ length: 32 }, (_, i) => `held-${i}`);
    const group = Promise.all(pages.map((u) => producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })));
    // The batch admits `held-new` and waits for the group's add, which holds `held-0`.
    const batch = producer.submitMany([target('held-0'), target('held-new')], DEFAULT_SCAN_OPTIONS, { priority: 'normal' });
    const marker = keys.inflight(cacheKeyOf(target('held-new'), DEFAULT_SCAN_OPTIONS));
    await waitFor(async () => (await r.exists(marker)) === 1);
    const twin = await producer.submit(target('held-new'), DEFAULT_SCAN_OPTIONS, { priority: 'normal' });
    const [, ofBatch] = await batch;
    await group;
    expect(twin).toEqual({ id: ofBatch!.id, outcome: 'inflight' });
    expect(await totalJobs(svc.service)).toBe(33);
  }, 30_000);

  it('a twin of a job another producer (another API process) is still adding joins it once it is in', async () => {
    const first = await apiOnly({ MAX_QUEUE_DEPTH: '1000' });
    const second = await startTestService({ redisUrl: redis.url, prefix: first.prefix, settings: { MAX_QUEUE_DEPTH: '1000' } });
    services.push(second);
    slowAdds(first.service.queue, 1_500);
    const pages = Array.from({ length: 10 }, (_, i) => `other-${i}`);
    const adding = Promise.all(pages.map((u) => first.service.producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })));
    // Decided by the second producer while the first one's add is still running.
    await waitFor(async () => (await first.service.redis.zcard(first.service.keys.admitting)) === 10);
    const twins = await Promise.all(pages.map((u) => second.service.producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })));
    const originals = await adding;
    expect(twins).toEqual(originals.map((o) => ({ id: o.id, outcome: 'inflight' })));
    expect(await totalJobs(first.service)).toBe(10);
  });

  it('a twin of a job this producer is still adding waits for that add, however long it takes: the page is not queued twice', async () => {
    const svc = await apiOnly({ MAX_QUEUE_DEPTH: '1000' });
    const { producer, redis: r, keys, queue } = svc.service;
    // Slower than the wait for another producer's add (3 s): only this producer's own add is waited for to the end.
    slowAdds(queue, 3_500);
    // A full group of 32 goes at once; the 33rd, a twin of the first, is decided on its own while that add runs.
    const pages = Array.from({ length: 32 }, (_, i) => `own-${i}`);
    const settled = await Promise.allSettled([...pages, pages[0]!].map((u) => producer.submit(target(u), DEFAULT_SCAN_OPTIONS, { priority: 'normal' })));
    const answers = settled.map((s) => (s.status === 'fulfilled' ? s.value : { error: (s.reason as { code?: string }).code }));
    expect(answers[0]).toMatchObject({ outcome: 'new' });
    expect(answers[32]).toEqual({ id: (answers[0] as { id: string }).id, outcome: 'inflight' });
    expect(await totalJobs(svc.service)).toBe(32);
    expect(await r.zcard(keys.admitting)).toBe(0);
  }, 20_000);

  it('a marker whose job was admitted and never added (its producer died) is waited for a while, then replaced: the request is not joined to a job that never comes', async () => {
    const svc = await apiOnly({ MAX_QUEUE_DEPTH: '1000' });
    const { producer, redis: r, keys } = svc.service;
    await r.set(keys.inflight(cacheKeyOf(target('orphan'), DEFAULT_SCAN_OPTIONS)), 'scan_orphan1', 'PX', 60_000);
    await r.zadd(keys.admitting, Date.now() + 25_000, 'scan_orphan1');
    const answer = await producer.submit(target('orphan'), DEFAULT_SCAN_OPTIONS, { priority: 'normal' });
    expect(answer.outcome).toBe('new');
    expect(answer.id).not.toBe('scan_orphan1');
    expect(await totalJobs(svc.service)).toBe(1);
  }, 20_000);
});

