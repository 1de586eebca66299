/**
 * Fault 3: the Chromium process of a `wcagai worker` killed with SIGKILL while scans run on it.
 * The pool starts a new browser, the scans that were on the dead one fail with a retryable error
 * and complete on a later attempt, and no Chromium process (the killed browser's renderers
 * included) outlives its browser or the worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reap, spawnWorker, type WorkerProcess } from '../queue/worker-process.js';
import { startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { browserTree, ourChromiumProcesses, waitForExit } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, uniquePrefix, waitFor, type TestService } from '../support/service.js';
import { recordResult } from './results.js';
import { account, finalRecords, settle, tracesOf } from './support/chaos-accounting.js';
import { serveTinyPages } from './support/chaos-pages.js';
import { submitAll } from './support/chaos-submit.js';
import { waitStarted } from './support/chaos-workers.js';

const SCANS = 60;
const KILLS = 3;
const CONCURRENCY = 3;
/** Bound on a worker's start (node, Chromium, warm pages), which hooks' 2-minute limit would not allow. */
const WORKER_START_MS = 180_000;
const COMMAND = 'npx vitest run --config vitest.reliability.config.ts test/reliability/chromium-kill.test.ts';

let redis: RedisServer;
let fixture: FixtureServer;
let api: TestService;
let worker: WorkerProcess;
let urls: string[];

beforeAll(async () => {
  [redis, fixture] = await Promise.all([startRedisServer(), startFixtureServer()]);
  // Pages answer after 300 ms: a scan spends most of its time in the middle of a navigation.
  urls = serveTinyPages(fixture, 'chromium', SCANS, { delayMs: 300 });
  const prefix = uniquePrefix('chaos_chromium');
  api = await startTestService({ redisUrl: redis.url, prefix });
  worker = spawnWorker(redis.url, prefix, { WORKER_CONCURRENCY: String(CONCURRENCY) });
});

afterAll(async () => {
  await worker?.stop();
  await reap(worker?.browserPids ?? []);
  await api?.close();
  await redis?.close();
  await fixture?.close();
});

/** Scans the worker has started and not yet logged an end for. */
function inFlight(): number {
  let n = 0;
  for (const e of worker.logs) {
    if (e.event === 'scan.start') n++;
    else if (e.event === 'scan.completed' || e.event === 'scan.failed') n--;
  }
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the worker's Chromium killed with SIGKILL in the middle of scans", () => {
  it('relaunches the browser, retries the scans that were on it until they complete, and leaves no Chromium behind', async () => {
    // Started in beforeAll; on a loaded machine a worker can take a minute to boot and warm its browser.
    await waitStarted(worker, WORKER_START_MS);
    const started = Date.now();
    const submitted = await submitAll(api, urls);
    expect(submitted.refused?.body).toBeUndefined();
    const { ids } = submitted;

    const kills: Array<{ pid: number; inFlight: number; relaunchedInS: number | null }> = [];
    const killedTrees: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      // Kill while at least two scans are under way on the browser.
      const busy = await waitFor(() => inFlight() >= 2, { timeoutMs: 30_000, intervalMs: 20, what: 'two scans in flight' }).catch(() => false);
      if (!busy) break;
      const launches = worker.browserPids.length;
      const pid = worker.browserPids[launches - 1]!;
      const tree = browserTree(pid);
      const during = inFlight();
      process.kill(pid, 'SIGKILL');
      const killedAt = Date.now();
      killedTrees.push(...tree);
      const relaunched = await waitFor(() => worker.browserPids.length > launches, { timeoutMs: 30_000, what: 'a new browser' }).catch(() => false);
      kills.push({ pid, inFlight: during, relaunchedInS: relaunched ? Math.round((Date.now() - killedAt) / 100) / 10 : null });
      await sleep(2_000);
    }

    const settled = await settle(api, ids, 90_000);
    await sleep(1_000);
    const ledger = await account(api, ids, { workerLogs: [worker.logs] });
    const records = await finalRecords(api, ids);

    // The scans that were on a killed browser: each logged a failed attempt, then completed.
    const failedAttempts = worker.logs.filter((e) => e.event === 'scan.failed');
    const affected = [...new Set(failedAttempts.map((e) => e.jobId as string))];
    const failureCodes: Record<string, number> = {};
    const failureSamples: Record<string, string> = {};
    for (const e of failedAttempts) {
      failureCodes[String(e.code)] = (failureCodes[String(e.code)] ?? 0) + 1;
      failureSamples[String(e.code)] ??= String(e.msg ?? '').slice(0, 160);
    }
    const affectedAttempts = affected.map((id) => records[ids.indexOf(id)]?.attempts ?? 0);
    const launchReasons = worker.logs.filter((e) => e.event === 'browser.launch').map((e) => String(e.reason));

    // The killed browsers' processes are gone; so is every browser once the worker has stopped.
    const killedLeft = await waitForExit(killedTrees, 10_000);
    const lastTree = worker.browserPids.flatMap((pid) => browserTree(pid));
    await worker.stop();
    const exit = await worker.exited;
    const finalLeft = await waitForExit(lastTree, 10_000);
    const strays = ourChromiumProcesses().map((p) => p.pid);
    const orphans = [...new Set([...killedLeft, ...finalLeft, ...strays])];

    recordResult('chromium-kill', {
      scans: SCANS,
      concurrency: CONCURRENCY,
      killed: kills.length,
      inFlightAtKills: kills.map((k) => k.inFlight),
      relaunchedInS: kills.map((k) => k.relaunchedInS),
      launches: launchReasons.length,
      launchReasons,
      affected: affected.length,
      failureCodes,
      failureSamples,
      affectedAttempts,
      completed: ledger.completed,
      dlq: ledger.dlq,
      lost: ledger.lost,
      duplicated: ledger.duplicated,
      orphans: orphans.length,
      workerExit: exit.code,
      settled,
      durationS: Math.round((Date.now() - started) / 100) / 10,
      command: COMMAND,
    });
    if (Object.keys(ledger.why).length) console.log('[reliability] unaccounted scans:', JSON.stringify(tracesOf([worker.logs], Object.keys(ledger.why).slice(0, 20)), null, 1));

    expect(kills.length, 'the scenario did not get to kill the browser mid-scan').toBe(KILLS);
    // A new browser after each kill: the first launch plus one per kill, each a crash relaunch.
    expect(kills.map((k) => k.relaunchedInS === null)).toEqual(Array(KILLS).fill(false));
    expect(launchReasons).toEqual(['start', ...Array(KILLS).fill('relaunch after crash')]);
    // The kills hit scans, and every one of them was retried to completion.
    expect(affected.length).toBeGreaterThan(0);
    for (const attempts of affectedAttempts) expect(attempts).toBeGreaterThanOrEqual(2);
    expect(ledger.why, 'lost or duplicated scans').toEqual({});
    expect(ledger.completed).toBe(SCANS);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(orphans).toEqual([]);
  });
});
