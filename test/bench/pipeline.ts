/**
 * bench:pipeline: end-to-end throughput of the service (POST /api/batches -> queue -> worker ->
 * result) on the GOV.UK audit corpus served on loopback, against the best plain axe-core baseline
 * of bench:scan (concurrency 2 and 4, the better counts). Usage: `npm run bench:pipeline`.
 *
 * The service runs in this process (API + worker at the default WORKER_CONCURRENCY) under a private
 * queue prefix removed at the end. One scan warms the worker up untimed; then the whole corpus is
 * submitted as one batch, timed from submission to the last scan's completion.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startService, type Service } from '../../src/app/service.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { tagsFor } from '../../src/domain/wcag.js';
import { createLogger } from '../../src/observability/logger.js';
import { keysFor } from '../../src/queue/keys.js';
import { RawBaseline } from '../support/raw-baseline.js';
import { startStaticServer } from '../support/static-server.js';

const TARGET = 0.85;
const DEADLINE_MS = 10 * 60_000;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORPUS = resolve(ROOT, '../shared/corpora/govuk-audit');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () => Number(loadavg()[0]!.toFixed(2));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface BatchView {
  status: string;
  total: number;
  counts: { queued: number; active: number; completed: number; failed: number };
  scans: Array<{ id: string; status: string; error?: string }>;
}

async function removePrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', keysFor(prefix).pattern, 'COUNT', 1_000);
      cursor = next;
      if (keys.length) removed += await redis.del(...keys);
    } while (cursor !== '0');
    return removed;
  } finally {
    redis.disconnect();
  }
}

async function json<T>(response: Response): Promise<T> {
  const body = await response.text();
  if (!response.ok) throw new Error(`${response.url}: HTTP ${response.status}: ${body.slice(0, 300)}`);
  return JSON.parse(body) as T;
}

/** The pipeline: one batch of every page, polled until every scan has finished or the deadline passes. */
async function pipelineRun(base: string, urls: readonly string[]): Promise<{ seconds: number; lost: number; failed: number }> {
  const started = Date.now();
  const batch = await json<{ id: string; total: number }>(
    await fetch(`${base}/api/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ urls }) }),
  );
  if (batch.total !== urls.length) log(`warning: batch holds ${batch.total} scans for ${urls.length} URLs`);
  let view: BatchView | null = null;
  let lastProgress = '';
  while (Date.now() - started < DEADLINE_MS) {
    view = await json<BatchView>(await fetch(`${base}/api/batches/${batch.id}`));
    const progress = `${view.counts.completed + view.counts.failed}/${view.total}`;
    if (progress !== lastProgress) {
      lastProgress = progress;
      if ((view.counts.completed + view.counts.failed) % 20 === 0) log(`  ${progress} finished after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    if (view.status === 'completed') break;
    await sleep(100);
  }
  const polledEnd = Date.now();
  if (!view) throw new Error('no batch view');
  // The last completion as the worker recorded it, rather than the poll that saw it.
  let lastFinished = 0;
  for (const s of view.scans) {
    if (s.status !== 'completed' && s.status !== 'failed') continue;
    const scan = await json<{ finishedAt: string | null }>(await fetch(`${base}/api/scans/${s.id}`));
    if (scan.finishedAt) lastFinished = Math.max(lastFinished, Date.parse(scan.finishedAt));
  }
  const end = view.status === 'completed' && lastFinished > started ? lastFinished : polledEnd;
  const failed = view.scans.filter((s) => s.status === 'failed');
  if (failed.length) log(`failed scans: ${failed.map((s) => s.error ?? '?').join(', ')}`);
  return { seconds: (end - started) / 1000, lost: urls.length - view.counts.completed, failed: failed.length };
}

async function rawRun(urls: readonly string[], concurrency: number): Promise<{ seconds: number; lost: number }> {
  const raw = await RawBaseline.start(concurrency);
  try {
    const started = performance.now();
    const results = await raw.scanAll(urls, tagsFor(DEFAULT_SCAN_OPTIONS));
    const seconds = (performance.now() - started) / 1000;
    return { seconds, lost: urls.length - results.filter((r) => r && r.error === undefined).length };
  } finally {
    await raw.close();
  }
}

async function main(): Promise<void> {
  const files = readdirSync(resolve(CORPUS, 'tests')).filter((f) => f.endsWith('.html')).sort();
  if (files.length === 0) throw new Error(`no pages in ${CORPUS}/tests`);
  const prefix = `bench-pipeline-${randomBytes(5).toString('hex')}`;
  const config = loadConfig(process.env, {
    QUEUE_PREFIX: prefix,
    RATE_LIMIT_MAX: '0',
    ALLOW_PRIVATE_TARGETS: 'true',
    LOG_LEVEL: 'warn',
    LOG_PRETTY: 'false',
    LOG_FILE: '',
    API_KEYS: '',
    REDIS_URL,
  });
  const concurrency = config.WORKER_CONCURRENCY;
  const logger = createLogger({ level: config.LOG_LEVEL });
  const server = await startStaticServer(CORPUS);
  const urls = files.map((f) => server.url(`/tests/${f}`));
  const loadBefore = load();
  let service: Service | null = null;
  let pipeline: Awaited<ReturnType<typeof pipelineRun>>;
  let raw: Awaited<ReturnType<typeof rawRun>> & { concurrency: number };
  try {
    service = await startService(config, logger, { api: true, workerConcurrency: concurrency, env: process.env });
    const base = await service.app!.listen({ port: 0, host: '127.0.0.1' });
    log(`warm-up: one scan through the service (not timed)`);
    const warm = await fetch(`${base}/api/scans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'wait=60' },
      body: JSON.stringify({ url: `${urls[0]}?warmup=1` }),
    });
    const warmView = (await warm.json()) as { status?: string };
    log(`warm-up: HTTP ${warm.status}, ${warmView.status ?? '?'}`);
    log(`pipeline: batch of ${urls.length} pages, worker concurrency ${concurrency}`);
    pipeline = await pipelineRun(base, urls);
    log(`pipeline: ${(urls.length / pipeline.seconds).toFixed(2)} pages/s in ${pipeline.seconds.toFixed(1)} s, lost ${pipeline.lost}`);
    await service.close(30_000);
    service = null;
    const raws = [];
    for (const c of [2, 4]) {
      const run = { ...(await rawRun(urls, c)), concurrency: c };
      log(`raw: concurrency ${c}: ${(urls.length / run.seconds).toFixed(2)} pages/s in ${run.seconds.toFixed(1)} s, lost ${run.lost}`);
      raws.push(run);
    }
    raw = raws.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  } finally {
    await service?.close(10_000).catch(() => undefined);
    await server.close();
    const removed = await removePrefix(prefix).catch(() => -1);
    log(`cleanup: removed ${removed} keys of ${prefix}`);
  }

  const pipelinePps = urls.length / pipeline.seconds;
  const rawPps = urls.length / raw.seconds;
  const ratio = pipelinePps / rawPps;
  process.stdout.write(`bench:pipeline  ${urls.length} pages of govuk-audit on loopback, WCAG ${DEFAULT_SCAN_OPTIONS.wcagVersion} ${DEFAULT_SCAN_OPTIONS.wcagLevel}, concurrency ${concurrency}\n`);
  process.stdout.write(`pipeline (POST /api/batches -> worker -> done): ${pipelinePps.toFixed(2)} pages/s in ${pipeline.seconds.toFixed(1)} s, lost ${pipeline.lost} (failed ${pipeline.failed})\n`);
  process.stdout.write(`raw axe baseline (best, concurrency ${raw.concurrency}): ${rawPps.toFixed(2)} pages/s in ${raw.seconds.toFixed(1)} s, lost ${raw.lost}\n`);
  process.stdout.write(`load average (1 min) ${loadBefore} before, ${load()} after, on ${availableParallelism()} CPUs\n`);
  process.stdout.write(`ratio=${ratio.toFixed(2)} target>=${TARGET.toFixed(2)} lost=${pipeline.lost}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:pipeline: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
