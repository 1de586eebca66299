/**
 * Fault 1: 500 scans across three `wcagai worker` processes while one of them is killed with
 * SIGKILL every 10 s and started again. Every scan must end completed or in the DLQ, exactly
 * once: nothing lost, no result stored twice.
 *
 * How "stored twice" is counted: Redis itself is watched with MONITOR for every write to a scan's
 * result key (ResultStore.putFinal is the only writer; see chaos-result-writes.ts), so a worker
 * killed between storing a result and logging it is still seen. A scan counts as duplicated when
 * two different records were written for it, when the workers' logs (every incarnation, killed
 * ones included) hold two `scan.completed` lines for it, when it has two DLQ entries, or when it
 * both completed and reached the DLQ.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reap, spawnWorker, type WorkerProcess } from '../queue/worker-process.js';
import { startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { browserTree, waitForExit } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, type TestService } from '../support/service.js';
import { recordResult } from './results.js';
import { account, settle, tracesOf } from './support/chaos-accounting.js';
import { serveTinyPages } from './support/chaos-pages.js';
import { watchResultWrites, type ResultWrites } from './support/chaos-result-writes.js';
import { submitAll } from './support/chaos-submit.js';
import { waitStarted } from './support/chaos-workers.js';

const SCANS = 500;
const WORKERS = 3;
const KILL_EVERY_MS = 10_000;
/** Bounds of the chaos phase: it ends when every scan has finished, or at these limits. */
const MAX_KILLS = 30;
const CHAOS_DEADLINE_MS = 240_000;
const SETTLE_AFTER_CHAOS_MS = 180_000;
/**
 * Two scans at once per worker (the default). A 10 s lock, renewed every 5 s and checked every 2 s,
 * so a killed worker's scans are picked up within about 12 s, while a worker slowed down by the
 * load on two shared cores still renews its lock in time.
 */
const WORKER_SETTINGS = { WORKER_CONCURRENCY: '2', WORKER_LOCK_DURATION: '10s', WORKER_STALLED_INTERVAL: '2s' };
/** Bound on a worker's start (node, Chromium, warm pages), which hooks' 2-minute limit would not allow. */
const WORKER_START_MS = 180_000;
const COMMAND = 'npx vitest run --config vitest.reliability.config.ts test/reliability/worker-kill.test.ts';

let redis: RedisServer;
let fixture: FixtureServer;
let api: TestService;
let writes: ResultWrites;
let prefix: string;
let urls: string[];
/** The live worker in each slot. */
const slots: WorkerProcess[] = [];
/** Every worker process started, killed ones included: their logs are part of the accounting. */
const incarnations: WorkerProcess[] = [];
const spawnedAt = new Map<WorkerProcess, number>();

function startWorker(slot: number): WorkerProcess {
  const worker = spawnWorker(redis.url, prefix, WORKER_SETTINGS);
  slots[slot] = worker;
  incarnations.push(worker);
  spawnedAt.set(worker, Date.now());
  return worker;
}

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  urls = serveTinyPages(fixture, 'kill', SCANS);
  prefix = uniquePrefix('chaos_kill');
  api = await startTestService({ redisUrl: redis.url, prefix });
  writes = await watchResultWrites(redis.url, api.service.keys);
  for (let i = 0; i < WORKERS; i++) startWorker(i);
});

afterAll(async () => {
  await Promise.allSettled(slots.map((w) => w.stop()));
  await reap(incarnations.flatMap((w) => w.browserPids));
  await writes?.stop();
  await api?.close();
  await redis?.close();
  await fixture?.close();
});

/** Scans a worker has started and not yet logged an end for: it is in the middle of them. */
function inFlight(worker: WorkerProcess): number {
  let n = 0;
  for (const e of worker.logs) {
    if (e.event === 'scan.start') n++;
    else if (e.event === 'scan.completed' || e.event === 'scan.failed') n--;
  }
  return n;
}

/** Median and longest time from spawn to `worker.start`, in seconds, over every incarnation that got there. */
function startTimes(): { median: number; max: number } | null {
  const s = incarnations
    .map((w) => {
      const at = w.logs.find((e) => e.event === 'worker.start')?.time;
      return typeof at === 'string' || typeof at === 'number' ? (new Date(at).getTime() - spawnedAt.get(w)!) / 1_000 : null;
    })
    .filter((x): x is number => x !== null)
    .sort((a, b) => a - b);
  if (s.length === 0) return null;
  return { median: Math.round(s[Math.floor(s.length / 2)]! * 10) / 10, max: Math.round(s[s.length - 1]! * 10) / 10 };
}

describe('workers killed with SIGKILL every 10 s under 500 scans', () => {
  it('ends every scan completed or in the DLQ exactly once: none lost, none stored twice', async () => {
    // Started in beforeAll; on a loaded machine a worker can take a minute to boot and warm its browser.
    await Promise.all(slots.map((w) => waitStarted(w, WORKER_START_MS)));
    const started = Date.now();
    const submitted = await submitAll(api, urls);
    expect(submitted.refused?.body).toBeUndefined();
    const { ids } = submitted;
    expect(new Set(ids).size).toBe(SCANS);

    // Every 10 s kill one running worker, the one with the most scans under way, and start a new
    // one in its place at once, until every scan has finished (or the bounds above are reached).
    // A worker still starting is not a candidate, and the tick is skipped unless another worker is
    // running: a start takes seconds on a quiet machine but up to a minute on a loaded one, and
    // killing faster than workers start would only keep the fleet from ever running.
    let killed = 0;
    let killedMidScan = 0;
    let skippedTicks = 0;
    const killedTrees: number[] = [];
    let nextKill = Date.now() + KILL_EVERY_MS;
    for (;;) {
      if (await settle(api, ids, 0)) break;
      if (Date.now() - started > CHAOS_DEADLINE_MS) break;
      if (Date.now() >= nextKill && killed < MAX_KILLS) {
        const ready = slots.map((w, slot) => ({ w, slot })).filter(({ w }) => w.logs.some((e) => e.event === 'worker.start'));
        if (ready.length < 2) skippedTicks++;
        else {
          const { w: victim, slot } = ready.reduce((a, b) => (inFlight(b.w) > inFlight(a.w) ? b : a));
          if (inFlight(victim) > 0) killedMidScan++;
          const tree = victim.browserPids.flatMap((pid) => browserTree(pid));
          victim.child.kill('SIGKILL');
          await victim.exited;
          killed++;
          killedTrees.push(...tree);
          startWorker(slot);
        }
        nextKill += KILL_EVERY_MS;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const chaosS = (Date.now() - started) / 1_000;

    // Whatever is left (a scan stalled by the last kill, a backlog on a starved machine) finishes
    // without further faults.
    const settled = await settle(api, ids, SETTLE_AFTER_CHAOS_MS);
    // The result is stored before the worker logs it, and its log reaches us asynchronously.
    await new Promise((r) => setTimeout(r, 1_500));
    const ledger = await account(api, ids, { workerLogs: incarnations.map((w) => w.logs), writes });
    // A killed worker's Chromium (driven over a pipe) goes with it, renderers included.
    const orphans = await waitForExit(killedTrees, 10_000);

    recordResult('worker-kill', {
      scans: SCANS,
      workers: WORKERS,
      concurrencyPerWorker: Number(WORKER_SETTINGS.WORKER_CONCURRENCY),
      killEveryS: KILL_EVERY_MS / 1_000,
      submitRetries: submitted.retried,
      killed,
      killedMidScan,
      skippedTicks,
      workerStartS: startTimes(),
      completed: ledger.completed,
      dlq: ledger.dlq,
      dlqCodes: ledger.dlqCodes,
      lost: ledger.lost,
      pending: ledger.pending,
      duplicated: ledger.duplicated,
      rerun: ledger.rerun,
      resultWrites: writes.total,
      orphans: orphans.length,
      settled,
      durationS: Math.round((Date.now() - started) / 100) / 10,
      chaosS: Math.round(chaosS * 10) / 10,
      command: COMMAND,
    });
    if (Object.keys(ledger.why).length) console.log('[reliability] unaccounted scans:', JSON.stringify(tracesOf(incarnations.map((w) => w.logs), Object.keys(ledger.why).slice(0, 20)), null, 1));

    expect(writes.interrupted, 'the MONITOR connection dropped: writes may have been missed').toBe(false);
    expect(killed, 'the scenario killed no worker').toBeGreaterThan(0);
    expect(ledger.why, 'lost, unfinished or duplicated scans').toEqual({});
    expect(ledger.pending, `scans unfinished ${Math.round((Date.now() - started) / 1_000)} s after submission`).toBe(0);
    expect(ledger.lost).toBe(0);
    expect(ledger.duplicated).toBe(0);
    expect(ledger.completed + ledger.dlq).toBe(SCANS);
    expect(orphans).toEqual([]);
  });
});
