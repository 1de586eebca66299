/**
 * BrowserPool with real Chromium: lending limits, slot reuse and replacement, recycling by scan count
 * and by memory, crash recovery, and that nothing outlives close().
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WcagaiError } from '../../src/errors/catalogue.js';
import { findBrowser, processTreeRss } from '../../src/scanner/browser.js';
import { BrowserPool, type PoolOptions, type Slot } from '../../src/scanner/pool.js';
import { browserTree, ourChromiumProcesses, waitForExit } from '../support/processes.js';

let executablePath: string;
const pools: BrowserPool[] = [];

beforeAll(async () => {
  executablePath = await findBrowser(process.env);
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function makePool(overrides: Partial<PoolOptions> = {}) {
  const launches: Array<{ reason: string; generation: number }> = [];
  const setups: number[] = [];
  const pool = new BrowserPool({
    concurrency: 2,
    executablePath,
    maxScansPerBrowser: 0,
    maxBrowserRssBytes: 0,
    setupPage: async () => {
      setups.push(Date.now());
    },
    events: { onLaunch: (info) => launches.push({ reason: info.reason, generation: info.generation }) },
    ...overrides,
  });
  pools.push(pool);
  return { pool, launches, setups };
}

const keep = <T>(value: T) => ({ value, reusable: true });

/** Resident set size of one process from /proc (shared pages included). */
function rssOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[21]) * 4096;
  } catch {
    return 0;
  }
}

describe('BrowserPool', () => {
  it('warms one page per slot, all in one browser context (not the default one), and lends at most `concurrency` at once', async () => {
    const { pool, setups, launches } = makePool({ concurrency: 2 });
    await pool.warm();
    expect(setups).toHaveLength(2);
    expect(launches).toEqual([{ reason: 'start', generation: 1 }]);

    let active = 0;
    let maxActive = 0;
    const seen: Slot[] = [];
    await Promise.all(
      Array.from({ length: 6 }, () =>
        pool.use(async (slot) => {
          active++;
          maxActive = Math.max(maxActive, active);
          expect(pool.snapshot().active).toBeLessThanOrEqual(2);
          if (!seen.includes(slot)) seen.push(slot);
          await new Promise((r) => setTimeout(r, 30));
          active--;
          return keep(null);
        }),
      ),
    );
    expect(maxActive).toBe(2);
    // The warm pages were reused, not reopened.
    expect(setups).toHaveLength(2);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.context).toBe(seen[1]!.context);
    expect(seen[0]!.context).not.toBe(seen[0]!.page.browser().defaultBrowserContext());
    expect(pool.snapshot()).toMatchObject({ concurrency: 2, active: 0, scansDone: 6, browserRestarts: 0, contextsRetired: 0 });
  });

  it('per-slot: gives every page a browser context of its own', async () => {
    const { pool } = makePool({ concurrency: 2, contextMode: 'per-slot' });
    await pool.warm();
    const release: Array<() => void> = [];
    const slots: Slot[] = [];
    const both = Promise.all(
      [0, 1].map(() =>
        pool.use(async (slot) => {
          slots.push(slot);
          await new Promise<void>((r) => release.push(r));
          return keep(null);
        }),
      ),
    );
    while (slots.length < 2) await new Promise((r) => setTimeout(r, 10));
    expect(slots[0]!.context).not.toBe(slots[1]!.context);
    expect(slots[0]!.context).not.toBe(slots[0]!.page.browser().defaultBrowserContext());
    for (const r of release) r();
    await both;
    // A page thrown away takes its own context along; the other slot keeps its page.
    const thrown = await pool.use(async (slot) => ({ value: slot, reusable: false }));
    await waitFor(() => !thrown.page.browser().browserContexts().includes(thrown.context));
    expect(pool.snapshot().contextsRetired).toBe(0);
  });

  it('shared: a slot given back unusable retires its context; scans still in it finish there, later ones start in a fresh one', async () => {
    const { pool, setups } = makePool({ concurrency: 3 });
    await pool.warm();
    const browser = (await pool.use(async (slot) => keep(slot.page.browser())))!;
    let releaseBusy!: () => void;
    let busy!: Slot;
    const busyDone = pool.use(async (slot) => {
      busy = slot;
      await new Promise<void>((r) => (releaseBusy = r));
      return keep(slot);
    });
    while (!busy) await new Promise((r) => setTimeout(r, 10));
    const old = busy.context;
    const failed = await pool.use(async (slot) => ({ value: slot, reusable: false }));
    expect(failed.context).toBe(old);
    expect(pool.snapshot().contextsRetired).toBe(1);
    // The busy scan is untouched; the next one opens in a new context.
    expect(busy.page.isClosed()).toBe(false);
    const next = await pool.use(async (slot) => keep(slot));
    expect(next.context).not.toBe(old);
    expect(browser.browserContexts()).toContain(old);
    releaseBusy();
    const back = await busyDone;
    // Given back reusable, but its context is retired: the page is closed, then the context.
    await waitFor(() => back.page.isClosed() && !browser.browserContexts().includes(old));
    const after = await Promise.all([0, 1, 2].map(() => pool.use(async (slot) => keep(slot.context))));
    expect(new Set(after)).toEqual(new Set([next.context]));
    expect(setups.length).toBeGreaterThanOrEqual(5);
  });

  it('throws away a slot reported unusable and opens a fresh one in its place', async () => {
    const { pool, setups } = makePool({ concurrency: 1 });
    await pool.warm();
    const first = await pool.use(async (slot) => ({ value: slot, reusable: false }));
    const second = await pool.use(async (slot) => keep(slot));
    const third = await pool.use(async (slot) => keep(slot));
    expect(second).not.toBe(first);
    expect(second.page).not.toBe(first.page);
    expect(third).toBe(second);
    expect(setups).toHaveLength(2);
    expect(first.page.isClosed()).toBe(true);
  });

  it('recycles the browser after maxScansPerBrowser scans', async () => {
    const { pool, launches } = makePool({ concurrency: 1, maxScansPerBrowser: 2 });
    await pool.warm();
    const firstPid = pool.snapshot().browserPid!;
    const firstTree = browserTree(firstPid);
    const generations: number[] = [];
    for (let i = 0; i < 5; i++) generations.push(await pool.use(async (slot) => keep(slot.generation)));
    expect(launches.map((l) => l.reason)).toEqual(['start', 'recycle after 2 scans', 'recycle after 2 scans']);
    expect(new Set(generations).size).toBe(3);
    expect(pool.snapshot().browserRestarts).toBe(2);
    expect(pool.snapshot().browserPid).not.toBe(firstPid);
    expect(await waitForExit(firstTree)).toEqual([]);
  });

  it('measures a browser by memory it really uses: shared pages are counted once', async () => {
    const { pool } = makePool({ concurrency: 2 });
    await pool.warm();
    await Promise.all(
      [0, 1].map(() =>
        pool.use(async (slot) => {
          await slot.page.setContent('<main><h1>Memory</h1><p>Some text</p></main>');
          return keep(null);
        }),
      ),
    );
    const pid = pool.snapshot().browserPid!;
    const tree = browserTree(pid);
    expect(tree.length).toBeGreaterThan(3);
    const summedRss = tree.reduce((sum, p) => sum + rssOf(p), 0);
    const measured = processTreeRss(pid);
    expect(measured).toBeGreaterThan(50 * 2 ** 20);
    // Every Chromium process maps the same libraries and shared memory; summing RSS counts them once
    // per process and overstates the tree several times over.
    expect(measured).toBeLessThan(summedRss * 0.75);
  });

  it('recycles the browser when its memory passes maxBrowserRssBytes (checked every 25 scans)', async () => {
    const { pool, launches } = makePool({ concurrency: 1, maxBrowserRssBytes: 1 });
    await pool.warm();
    for (let i = 0; i < 24; i++) await pool.use(async () => keep(null));
    expect(pool.snapshot().browserRestarts).toBe(0);
    await pool.use(async () => keep(null));
    await pool.use(async () => keep(null));
    expect(pool.snapshot().browserRestarts).toBe(1);
    expect(launches[1]?.reason).toMatch(/^recycle at \d+ MiB$/);
  });

  it('marks lent slots stale when the browser dies and relaunches for the next use', async () => {
    const { pool, launches } = makePool({ concurrency: 1 });
    await pool.warm();
    const pid = pool.snapshot().browserPid!;
    const tree = browserTree(pid);
    const staleAfterKill = await pool.use(async (slot) => {
      expect(pool.isStale(slot)).toBe(false);
      const gone = new Promise<void>((resolve) => slot.page.browser().once('disconnected', () => resolve()));
      process.kill(pid, 'SIGKILL');
      await gone;
      return { value: pool.isStale(slot), reusable: true };
    });
    expect(staleAfterKill).toBe(true);
    const title = await pool.use(async (slot) => {
      await slot.page.setContent('<title>alive</title>');
      return keep(await slot.page.title());
    });
    expect(title).toBe('alive');
    expect(launches.map((l) => l.reason)).toEqual(['start', 'relaunch after crash']);
    expect(pool.snapshot().browserRestarts).toBe(1);
    expect(await waitForExit(tree)).toEqual([]);
  });

  it('leaves no browser process behind after close, and refuses work afterwards', async () => {
    const { pool } = makePool({ concurrency: 2 });
    await pool.warm();
    const tree = browserTree(pool.snapshot().browserPid!);
    expect(tree.length).toBeGreaterThan(1);
    // A caller waiting for a slot when the pool closes is released with an error, not left hanging.
    const releases: Array<() => void> = [];
    const held = Promise.all(
      [0, 1].map(() => pool.use(() => new Promise<{ value: null; reusable: boolean }>((r) => releases.push(() => r(keep(null)))))),
    );
    await new Promise((r) => setTimeout(r, 50));
    const waiting = pool.use(async () => keep('ran')).then(
      () => null,
      (err: unknown) => err,
    );
    await pool.close();
    expect(await waiting).toMatchObject({ code: 'SCAN_ABORTED' });
    for (const release of releases) release();
    await held.catch(() => undefined);
    expect(await waitForExit(tree)).toEqual([]);
    expect(ourChromiumProcesses()).toEqual([]);
    await expect(pool.use(async () => keep(null))).rejects.toBeInstanceOf(WcagaiError);
  });
});
