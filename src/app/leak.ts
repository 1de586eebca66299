import { spawn } from 'node:child_process';
import { makeDirectory } from '../config/files.js';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_SCAN_OPTIONS } from '../domain/scan.js';
import { HEALTHY_PAGES, startFixtureSite, type FixtureSite } from '../diagnostics/fixture-site.js';
import { checkTargets, runLeak, type LeakProbes, type LeakResult } from '../diagnostics/leak.js';
import { WcagaiError } from '../errors/catalogue.js';
import { processTreeRss } from '../scanner/browser.js';
import { createScanner, deadlinesOf, DEFAULT_SCANNER_CONFIG } from '../scanner/engine.js';
import { parseTargetUrl, policyFromEnv } from '../scanner/target-guard.js';

export interface LeakFlags {
  concurrent: number;
  cycles: number;
  /** Chromium pages open at once (default: defaultLeakPages). */
  pages?: number;
  url?: string[];
  maxGrowth: number;
  tolerance: number;
  heapSnapshots?: string;
  warmup?: number;
  /** The run stops after this long, whatever --cycles says (the result says how many ran). */
  maxDurationMs: number;
  /** Deadline of each scan in ms, as `wcagai scan --timeout` (default: the engine's). */
  timeoutMs?: number;
}

/** Set in the child that `leak` re-executes with --expose-gc, so it never re-executes again. */
const CHILD_MARK = 'WCAGAI_LEAK_CHILD';
/**
 * Test-only: when set, every scan result is kept for the whole run (plus this many bytes of
 * padding per result, default 1 MiB), so the detector can be shown a real leak. Read here only.
 */
const RETAIN_HOOK = 'WCAGAI_LEAK_TEST_RETAIN';

type Gc = () => void;

function exposedGc(): Gc | null {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as Gc) : null;
}

/**
 * Without `global.gc`, runs this same command again under `node --expose-gc` and resolves to the
 * child's exit code; resolves null when gc is already there (or the child cannot be made).
 */
export async function reexecWithGc(): Promise<number | null> {
  if (exposedGc()) return null;
  if (process.env[CHILD_MARK]) return null;
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [CHILD_MARK]: '1' },
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await new Promise<number>((resolvePromise, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolvePromise(code ?? (signal ? 1 : 0)));
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** gc() when exposed; otherwise the flag is set at run time and gc taken from a fresh context. */
function gcFunction(): Gc {
  const gc = exposedGc();
  if (gc) return gc;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as Gc;
}

function probesOf(snapshotDir: string | undefined): LeakProbes {
  const gc = gcFunction();
  const dir = snapshotDir ? resolve(snapshotDir) : undefined;
  if (dir) {
    try {
      makeDirectory(dir);
    } catch (err) {
      throw new WcagaiError('USAGE', `cannot create ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return {
    gc,
    memory: () => {
      const m = process.memoryUsage();
      return { heapUsed: m.heapUsed, external: m.external, rss: m.rss };
    },
    handles: () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').length,
    treeRss: processTreeRss,
    ...(dir ? { snapshot: (label: 'first' | 'last') => writeHeapSnapshot(join(dir, `wcagai-leak-${process.pid}-${label}.heapsnapshot`)) } : {}),
  };
}

/** The retaining test hook, when its variable is set. */
function retainHook(): ((result: unknown) => void) | undefined {
  const raw = process.env[RETAIN_HOOK];
  if (!raw) return undefined;
  const padding = /^\d+$/.test(raw) && Number(raw) > 1 ? Number(raw) : 2 ** 20;
  const kept: unknown[] = [];
  // Numbers in a plain array: on the V8 heap (a Buffer would be external memory).
  return (result) => kept.push({ result, padding: new Array<number>(Math.ceil(padding / 8)).fill(kept.length + 0.5) });
}

/**
 * Pages the engine keeps open when --pages is not given: twice the CPUs (at least 2), as a worker
 * would run them, never more than the scans of a cycle. More pages than a machine renders at
 * once only make every scan slower until its deadlines fail it: `--concurrent 50` on 2 CPUs would
 * measure timeouts, not memory. The other scans of a cycle wait for a free page, as jobs do.
 */
export function defaultLeakPages(concurrent: number, cpus = availableParallelism()): number {
  return Math.min(concurrent, Math.max(2, 2 * cpus));
}

/** `wcagai leak`: the real scan engine in this process against the fixture site (or --url pages). */
export async function leakFromFlags(flags: LeakFlags, onProgress?: Parameters<typeof runLeak>[2]['onProgress']): Promise<LeakResult> {
  const urls = (flags.url ?? []).map((u) => parseTargetUrl(u).href);
  let site: FixtureSite | null = null;
  const probes = probesOf(flags.heapSnapshots);
  const abort = new AbortController();
  // SIGINT and SIGTERM stop the run after its current cycle, and it reports what it measured.
  // Not `once`: Ctrl-C on a terminal reaches this child twice (from the terminal, and forwarded
  // by the parent that re-executed it), and the second must not kill it before it reports.
  const onSignal = () => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (urls.length === 0) {
      site = await startFixtureSite();
      urls.push(...HEALTHY_PAGES.map((p) => site!.url(p)));
    }
    const pages = Math.min(flags.concurrent, flags.pages ?? defaultLeakPages(flags.concurrent));
    const scanner = await createScanner({
      ...DEFAULT_SCANNER_CONFIG,
      concurrency: pages,
      ...deadlinesOf(flags.timeoutMs),
      env: process.env,
      // Loopback fixture pages are the default target; ALLOW_PRIVATE_TARGETS=false still refuses them.
      policy: policyFromEnv(process.env, { allowPrivate: true }),
    });
    // --max-duration aborts the same controller as a signal. Not AbortSignal.timeout: a run that
    // forces a GC every few cycles collects that signal before it fires (Node 20), and the
    // deadline never came (a 55-minute bound ran on past the hour until stopped by hand).
    const deadline = setTimeout(() => abort.abort(), flags.maxDurationMs);
    try {
      const engine = { scan: (url: string) => scanner.scan(url, DEFAULT_SCAN_OPTIONS), browserPid: () => scanner.stats().browserPid };
      // --url pages are scanned once first: one that cannot be reached is a tool error, not a leak.
      // Ctrl-C or --max-duration meanwhile ends the wait: the run below stops at once, measuring nothing.
      if (!site) {
        const stopped = new Promise<void>((resolve) => (abort.signal.aborted ? resolve() : abort.signal.addEventListener('abort', () => resolve(), { once: true })));
        const checked = checkTargets(engine, urls);
        // Its refusal after a stop has nobody left to tell.
        checked.catch(() => undefined);
        await Promise.race([checked, stopped]);
      }
      const retain = retainHook();
      return await runLeak(
        engine,
        probes,
        {
          concurrent: flags.concurrent,
          pages,
          cycles: flags.cycles,
          urls,
          maxGrowthBytes: flags.maxGrowth,
          toleranceBytes: flags.tolerance,
          ...(flags.warmup !== undefined ? { warmupCycles: flags.warmup } : {}),
          ...(retain ? { retain } : {}),
          ...(onProgress ? { onProgress } : {}),
          signal: abort.signal,
        },
      );
    } finally {
      clearTimeout(deadline);
      await scanner.close();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await site?.close();
  }
}
