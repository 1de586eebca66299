/**
 * bench:scan: throughput of the scan engine against a plain axe-core baseline on the GOV.UK
 * audit corpus, served on loopback. Usage: `npm run bench:scan [-- --json] [--rounds N]`.
 *
 * Each measurement starts its browser(s) untimed, times one pass over every page, then closes.
 * Runs are interleaved (raw 2, engine 2, raw 4, engine 4, then the reverse; further rounds, if
 * asked for, keep alternating) so drift in machine load hits both sides alike, and the best round
 * of each counts. One untimed warm-up pass first
 * pulls Chromium, the corpus and Node's JIT into a steady state.
 */
import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SCAN_OPTIONS, type ScanOptions } from '../../src/domain/scan.js';
import { toolInfo } from '../../src/domain/version.js';
import { tagsFor } from '../../src/domain/wcag.js';
import { scanBatch } from '../../src/scanner/batch.js';
import { createScanner, DEFAULT_SCANNER_CONFIG } from '../../src/scanner/engine.js';
import { defaultResolver } from '../../src/scanner/target-guard.js';
import { RawBaseline } from '../support/raw-baseline.js';
import { startStaticServer } from '../support/static-server.js';

type Impl = 'raw' | 'engine';

interface Run {
  impl: Impl;
  concurrency: number;
  round: number;
  seconds: number;
  pagesPerSecond: number;
  /** Pages that came back with an error, or not at all. */
  lost: number;
}

const TARGET = 0.9;
const CONCURRENCIES = [2, 4] as const;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORPUS = resolve(ROOT, '../shared/corpora/govuk-audit');
const json = process.argv.includes('--json');
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 2;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  process.stderr.write('bench:scan: --rounds takes a positive integer\n');
  process.exit(1);
}
const log = (line: string) => process.stderr.write(`${line}\n`);

const options: ScanOptions = { ...DEFAULT_SCAN_OPTIONS };

/** One timed pass through the engine: the pool is created and warmed before the clock starts. */
async function engineRun(urls: readonly string[], concurrency: number): Promise<{ seconds: number; lost: number }> {
  const scanner = await createScanner({
    ...DEFAULT_SCANNER_CONFIG,
    concurrency,
    // The corpus is on loopback; the guard's cost with private targets allowed is what we ship for local scans.
    policy: { allowPrivate: true, allowedHosts: [], resolve: defaultResolver },
  });
  try {
    const started = performance.now();
    const report = await scanBatch(scanner, urls, options, { concurrency, tool: toolInfo() });
    const seconds = (performance.now() - started) / 1000;
    const lost = urls.length - report.pages.filter((p) => p?.status === 'ok').length;
    return { seconds, lost };
  } finally {
    await scanner.close();
  }
}

/** One timed pass through the plain axe baseline, its pages opened before the clock starts. */
async function rawRun(urls: readonly string[], concurrency: number): Promise<{ seconds: number; lost: number }> {
  const raw = await RawBaseline.start(concurrency);
  try {
    const started = performance.now();
    const results = await raw.scanAll(urls, tagsFor(options));
    const seconds = (performance.now() - started) / 1000;
    const lost = urls.length - results.filter((r) => r && r.error === undefined).length;
    return { seconds, lost };
  } finally {
    await raw.close();
  }
}

const runOnce = (impl: Impl, urls: readonly string[], c: number) => (impl === 'raw' ? rawRun(urls, c) : engineRun(urls, c));

function best(runs: readonly Run[], impl: Impl, concurrency?: number): Run | undefined {
  return runs
    .filter((r) => r.impl === impl && (concurrency === undefined || r.concurrency === concurrency))
    .reduce<Run | undefined>((a, r) => (a && a.pagesPerSecond >= r.pagesPerSecond ? a : r), undefined);
}

/** 1-minute load average: on a shared machine, the first thing to read next to the figures. */
const load = () => Number(loadavg()[0]!.toFixed(2));

function table(runs: readonly Run[], pages: number): string {
  const rows = [`bench:scan  ${pages} pages of govuk-audit on loopback, WCAG ${options.wcagVersion} ${options.wcagLevel}, pages/s (best of ${ROUNDS} rounds), lost = pages lost over all rounds`];
  const roundHeads = Array.from({ length: ROUNDS }, (_, i) => `round ${i + 1}`.padStart(10)).join('');
  rows.push(`${'impl'.padEnd(8)}${'conc'.padStart(5)}${roundHeads}${'best'.padStart(8)}${'lost'.padStart(6)}`);
  for (const c of CONCURRENCIES) {
    for (const impl of ['raw', 'engine'] as const) {
      const mine = runs.filter((r) => r.impl === impl && r.concurrency === c).sort((a, b) => a.round - b.round);
      const lost = mine.reduce((n, r) => n + r.lost, 0);
      rows.push(
        `${impl.padEnd(8)}${String(c).padStart(5)}${mine.map((r) => r.pagesPerSecond.toFixed(2).padStart(10)).join('')}${(best(mine, impl)?.pagesPerSecond ?? 0).toFixed(2).padStart(8)}${String(lost).padStart(6)}`,
      );
    }
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const files = readdirSync(resolve(CORPUS, 'tests')).filter((f) => f.endsWith('.html')).sort();
  if (files.length === 0) throw new Error(`no pages in ${CORPUS}/tests`);
  const server = await startStaticServer(CORPUS);
  const urls = files.map((f) => server.url(`/tests/${f}`));
  const runs: Run[] = [];
  const loadBefore = load();
  try {
    log(`warm-up: engine, concurrency 2, ${urls.length} pages (not timed)`);
    await engineRun(urls, 2);
    const order: Array<[Impl, number]> = CONCURRENCIES.flatMap((c) => [['raw', c] as [Impl, number], ['engine', c] as [Impl, number]]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [impl, c] of round % 2 === 0 ? order : [...order].reverse()) {
        const { seconds, lost } = await runOnce(impl, urls, c);
        const run: Run = { impl, concurrency: c, round: round + 1, seconds, pagesPerSecond: urls.length / seconds, lost };
        runs.push(run);
        log(`round ${run.round}: ${impl} c=${c}: ${run.pagesPerSecond.toFixed(2)} pages/s in ${seconds.toFixed(1)} s, lost ${lost}`);
      }
    }
  } finally {
    await server.close();
  }

  const loadAverage = { before: loadBefore, after: load(), cpus: availableParallelism() };
  const ours = best(runs, 'engine')!;
  const theirs = best(runs, 'raw')!;
  const ratio = ours.pagesPerSecond / theirs.pagesPerSecond;
  // Every page the engine lost in any timed run: the target is none.
  const lost = runs.filter((r) => r.impl === 'engine').reduce((n, r) => n + r.lost, 0);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ pages: urls.length, corpus: CORPUS, options, loadAverage, runs, best: { engine: ours, raw: theirs }, ratio, target: TARGET, lost }, null, 2)}\n`,
    );
    return;
  }
  process.stdout.write(`${table(runs, urls.length)}\n`);
  process.stdout.write(`load average (1 min) ${loadAverage.before} before, ${loadAverage.after} after, on ${loadAverage.cpus} CPUs\n`);
  process.stdout.write(`best: engine ${ours.pagesPerSecond.toFixed(2)} pages/s (c=${ours.concurrency}), raw ${theirs.pagesPerSecond.toFixed(2)} pages/s (c=${theirs.concurrency})\n`);
  process.stdout.write(`ratio=${ratio.toFixed(2)} target>=${TARGET.toFixed(2)} lost=${lost}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:scan: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
