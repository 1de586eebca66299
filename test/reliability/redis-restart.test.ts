/**
 * Fault 2: Redis, with an append-only file, killed in the middle of load and started again on the
 * same port. While it is down the API answers 503 problem+json (REDIS_UNAVAILABLE); nobody
 * restarts the API or the `wcagai worker` process, they find Redis again by themselves; every
 * scan accepted with 202, before the crash or after it, completes.
 *
 * Redis is killed with SIGKILL (a crash, no shutdown save) and runs with `appendfsync everysec`,
 * Redis's default: an acknowledged write has reached the file (the kernel's page cache) before
 * the client saw the answer, so a process crash loses none of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reap, spawnWorker, type WorkerProcess } from '../queue/worker-process.js';
import { startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { jobCounts, startTestService, uniquePrefix, type JsonResponse, type TestService } from '../support/service.js';
import { recordResult } from './results.js';
import { account, settle, tracesOf } from './support/chaos-accounting.js';
import { serveTinyPages } from './support/chaos-pages.js';
import { waitStarted } from './support/chaos-workers.js';

/** One submission every 250 ms, and a read of the queue every fourth turn. */
const SUBMIT_EVERY_MS = 250;
const BEFORE_MS = 6_000;
const DOWN_MS = 5_000;
const AFTER_MS = 6_000;
/** Bound on how long the API may take to accept scans again after Redis is back. */
const RECOVERY_DEADLINE_MS = 30_000;
const MAX_PAGES = 400;
/** Bound on a worker's start (node, Chromium, warm pages), which hooks' 2-minute limit would not allow. */
const WORKER_START_MS = 180_000;
const COMMAND = 'npx vitest run --config vitest.reliability.config.ts test/reliability/redis-restart.test.ts';

let redis: RedisServer;
let fixture: FixtureServer;
let api: TestService;
let worker: WorkerProcess;
let urls: string[];

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer({ appendOnly: true, appendFsync: 'everysec' }), startFixtureServer()]);
  // Each page answers after 200 ms, so scans are in the middle of their navigation when Redis dies.
  urls = serveTinyPages(fixture, 'aof', MAX_PAGES, { delayMs: 200 });
  const prefix = uniquePrefix('chaos_aof');
  api = await startTestService({ redisUrl: redis.url, prefix });
  worker = spawnWorker(redis.url, prefix, { WORKER_CONCURRENCY: '2' });
});

afterAll(async () => {
  // Redis must be up for an orderly close; restart it if a failed test left it down.
  if (redis && redis.pid === null) await redis.restart().catch(() => undefined);
  await worker?.stop();
  await reap(worker?.browserPids ?? []);
  await api?.close();
  await redis?.close();
  await fixture?.close();
});

interface Answer {
  kind: 'submit' | 'read';
  startedAt: number;
  finishedAt: number;
  res: JsonResponse;
}

/** A 503 problem+json: Redis unavailable, or (on a machine shared with other jobs) event-loop pressure. */
function isProblem503(res: JsonResponse, code?: string): boolean {
  const codes = code ? [code] : ['REDIS_UNAVAILABLE', 'OVERLOADED'];
  return (
    res.status === 503 &&
    res.headers['content-type'] === 'application/problem+json; charset=utf-8' &&
    res.json?.status === 503 &&
    codes.includes(res.json?.code) &&
    res.json?.type === `urn:wcagai:problem:${String(res.json?.code).toLowerCase().replace(/_/g, '-')}`
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis with AOF killed and restarted under load', () => {
  it('answers 503 problem+json while it is down, recovers by itself, and completes every scan accepted with 202', async () => {
    // Started in beforeAll; on a loaded machine a worker can take a minute to boot and warm its browser.
    await waitStarted(worker, WORKER_START_MS);
    const started = Date.now();
    const answers: Answer[] = [];
    let stopLoad = false;
    let next = 0;
    const load = (async () => {
      for (let turn = 0; !stopLoad && next < urls.length; turn++) {
        const startedAt = Date.now();
        const res = await api.post('/api/scans', { url: urls[next++] });
        answers.push({ kind: 'submit', startedAt, finishedAt: Date.now(), res });
        if (turn % 4 === 3) {
          const at = Date.now();
          answers.push({ kind: 'read', startedAt: at, finishedAt: Date.now(), res: await api.get('/api/queue') });
        }
        await sleep(Math.max(0, SUBMIT_EVERY_MS - (Date.now() - startedAt)));
      }
    })();

    // Load for a while, and at least until scans have been accepted and one is being scanned.
    await sleep(BEFORE_MS);
    const accepting = () => answers.some((a) => a.res.status === 202) && worker.logs.some((e) => e.event === 'scan.start');
    for (const until = Date.now() + 60_000; !accepting() && Date.now() < until; ) await sleep(100);
    const atKill = await jobCounts(api.service);
    await redis.stop();
    const downAt = Date.now();
    await sleep(DOWN_MS);
    const restartAt = Date.now();
    await redis.restart();
    const upAt = Date.now();
    // The first 202 after the restart is the recovery.
    let acceptedAgainAt: number | null = null;
    for (const until = Date.now() + RECOVERY_DEADLINE_MS; acceptedAgainAt === null && Date.now() < until; await sleep(50)) {
      acceptedAgainAt = answers.find((a) => a.kind === 'submit' && a.startedAt >= upAt && a.res.status === 202)?.finishedAt ?? null;
    }
    await sleep(AFTER_MS);
    stopLoad = true;
    await load;

    const submits = answers.filter((a) => a.kind === 'submit');
    const accepted = submits.filter((a) => a.res.status === 202).map((a) => a.res.json.id as string);
    const settled = await settle(api, accepted, 90_000);
    await sleep(1_000);
    const ledger = await account(api, accepted, { workerLogs: [worker.logs] });

    // While Redis was certainly down: sent after it died, answered before it was started again.
    const whileDown = answers.filter((a) => a.startedAt >= downAt && a.finishedAt <= restartAt);
    const unavailable = answers.filter((a) => a.res.status === 503);
    const fiveHundreds = answers.filter((a) => a.res.status >= 500 && !isProblem503(a.res));
    const by503Code: Record<string, number> = {};
    for (const a of unavailable) by503Code[String(a.res.json?.code)] = (by503Code[String(a.res.json?.code)] ?? 0) + 1;
    const unexpected = answers.filter((a) => a.res.status !== 503 && a.res.status !== (a.kind === 'submit' ? 202 : 200));
    const acceptedBeforeKill = submits.filter((a) => a.finishedAt <= downAt && a.res.status === 202).length;
    recordResult('redis-restart', {
      redis: 'appendonly yes, appendfsync everysec, killed with SIGKILL',
      requests: answers.length,
      submitted: submits.length,
      accepted: accepted.length,
      acceptedBeforeKill,
      acceptedAfterRestart: accepted.length - acceptedBeforeKill,
      queuedAtKill: (atKill.waiting ?? 0) + (atKill.prioritized ?? 0) + (atKill.active ?? 0) + (atKill.delayed ?? 0),
      unavailable503: unavailable.length,
      by503Code,
      answeredWhileDown: whileDown.length,
      fiveHundreds: fiveHundreds.length,
      unexpected: unexpected.length,
      downS: Math.round((restartAt - downAt) / 100) / 10,
      recoveredInS: acceptedAgainAt === null ? null : Math.round((acceptedAgainAt - upAt) / 100) / 10,
      outageS: acceptedAgainAt === null ? null : Math.round((acceptedAgainAt - downAt) / 100) / 10,
      completed: ledger.completed,
      dlq: ledger.dlq,
      lost: ledger.lost,
      duplicated: ledger.duplicated,
      rerun: ledger.rerun,
      settled,
      durationS: Math.round((Date.now() - started) / 100) / 10,
      command: COMMAND,
    });
    if (Object.keys(ledger.why).length) console.log('[reliability] unaccounted scans:', JSON.stringify(tracesOf([worker.logs], Object.keys(ledger.why).slice(0, 20)), null, 1));

    expect(acceptedBeforeKill, 'no scan was accepted before the crash').toBeGreaterThan(0);
    expect(whileDown.length, 'no request was answered while Redis was down').toBeGreaterThan(0);
    // Down: every request, submit or read, is a 503 problem+json, and Redis is named.
    for (const a of whileDown) expect(isProblem503(a.res), `${a.kind} while down: ${a.res.status} ${a.res.body}`).toBe(true);
    expect(whileDown.filter((a) => isProblem503(a.res, 'REDIS_UNAVAILABLE')).length).toBeGreaterThan(0);
    for (const a of unavailable) expect(isProblem503(a.res), `503: ${a.res.body}`).toBe(true);
    expect(fiveHundreds.map((a) => `${a.res.status} ${a.res.body}`)).toEqual([]);
    expect(unexpected.map((a) => `${a.kind} ${a.res.status} ${a.res.body}`)).toEqual([]);
    // Recovered by itself: accepted again after the restart, and the worker ran those scans too.
    expect(acceptedAgainAt, 'the API never accepted a scan again').not.toBeNull();
    expect(ledger.why, 'accepted scans lost or duplicated').toEqual({});
    expect(ledger.completed).toBe(accepted.length);
  });
});
