/**
 * bench:api: submission throughput of the full API (POST /api/scans, enqueue only, no worker)
 * against a bare Fastify route doing the same BullMQ `queue.add`.
 * Usage: `npm run bench:api [-- --rounds N] [--ladder] [--profile]`.
 *
 * Both run in this process on loopback, each under a private queue prefix removed at the end.
 * The full server has its hardening on as deployed: API key auth, the Redis-backed rate limiter
 * (with a limit no run reaches, so it counts every request without refusing one), request logs
 * at info (written to /dev/null: their cost without a terminal's), metrics, security headers.
 * After an uncounted warm-up of each side (3 s), runs alternate bare, full, bare, full so drift
 * in machine load hits both sides alike; the best round of each counts, and each round's pair is
 * printed as a ratio too (what drift does to it); `--rounds N` runs N pairs instead of 2.
 * `--ladder` adds the full server with request logs, the rate limiter, API keys, and all three,
 * turned off, to show what each costs. `--profile` adds one more round of bare and full under
 * the inspector (not counted: profiling slows both) and prints, per request, CPU time and bytes
 * allocated by package or source directory, side by side; the raw .cpuprofile and .heapprofile
 * files (open them in Chrome DevTools) go to the temp directory.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { startService, type Service } from '../../src/app/service.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { createLogger, logDestination } from '../../src/observability/logger.js';
import { cacheKeyOf, JOB_SCHEMA_VERSION, newScanId } from '../../src/queue/job.js';
import { keysFor } from '../../src/queue/keys.js';
import { scanJobOptions } from '../../src/queue/producer.js';
import { producerConnection, waitReady } from '../../src/queue/redis.js';

interface Run {
  impl: string;
  round: number;
  requests: number;
  reqPerSec: number;
  p99: number;
  non2xx: number;
  errors: number;
}

const TARGET = 0.8;
const API_KEY = `bench-${randomBytes(12).toString('hex')}`;
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 2;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 20) {
  process.stderr.write('bench:api: --rounds takes an integer from 1 to 20\n');
  process.exit(1);
}
const CONNECTIONS = 100;
const DURATION_S = 10;
/** An uncounted run of each side first: the full server has far more code for the JIT to compile than the bare route. */
const WARMUP_S = 3;
const MAX_REQUESTS = 500_000;
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () => Number(loadavg()[0]!.toFixed(2));

/** Global across runs: every request of the bench names a different URL, so cache and dedup never collapse them. */
let counter = 0;

async function removePrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  try {
    const pattern = keysFor(prefix).pattern;
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      cursor = next;
      if (keys.length) removed += await redis.del(...keys);
    } while (cursor !== '0');
    return removed;
  } finally {
    redis.disconnect();
  }
}

/** The reference: one route, the same `queue.add` the producer does (same job options), nothing else. */
async function startBare(prefix: string, settings: { attempts: number; backoffMs: number }): Promise<{ app: FastifyInstance; queue: Queue; redis: Redis; url: string }> {
  const keys = keysFor(prefix);
  const redis = producerConnection(REDIS_URL);
  await waitReady(redis, 10_000);
  const queue = new Queue(keys.queueName, { connection: redis, prefix: keys.bullPrefix });
  queue.on('error', () => undefined);
  const app = Fastify({ logger: false });
  app.post<{ Body: { url: string } }>('/api/scans', async (request, reply) => {
    const url = request.body.url;
    const options = { ...DEFAULT_SCAN_OPTIONS };
    const id = newScanId();
    await queue.add('scan', { v: JOB_SCHEMA_VERSION, url, options, cacheKey: cacheKeyOf(url, options) }, scanJobOptions(id, 'normal', settings));
    return reply.code(202).send({ id, status: 'queued' });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, queue, redis, url };
}

async function drive(baseUrl: string, durationS = DURATION_S): Promise<Omit<Run, 'impl' | 'round'>> {
  const result = await autocannon({
    url: `${baseUrl}/api/scans`,
    connections: CONNECTIONS,
    duration: durationS,
    maxOverallRequests: MAX_REQUESTS,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ url: `http://127.0.0.1:9/p${counter++}` }) }),
      },
    ],
  });
  const seconds = result.duration || durationS;
  return {
    requests: result.requests.total,
    reqPerSec: result.requests.total / seconds,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function best(runs: readonly Run[], impl: string): Run {
  return runs.filter((r) => r.impl === impl).reduce((a, r) => (a.reqPerSec >= r.reqPerSec ? a : r));
}

/** The full server with some of its hardening turned off (`--ladder`), to show what each part costs. */
const LADDER: Array<{ name: string; what: string; overrides: Record<string, string> }> = [
  { name: 'full-logs', what: 'full without request logs (LOG_LEVEL=warn)', overrides: { LOG_LEVEL: 'warn' } },
  { name: 'full-rl', what: 'full without the Redis rate limiter (RATE_LIMIT_MAX=0)', overrides: { RATE_LIMIT_MAX: '0' } },
  { name: 'full-auth', what: 'full without API keys (API_KEYS unset)', overrides: { API_KEYS: '' } },
  { name: 'core', what: 'none of those three: validation, target check, cache, dedup, admission, metrics, request ids, security headers, under-pressure', overrides: { LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '0', API_KEYS: '' } },
];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface HeapNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: HeapNode[];
}

/** Where a frame's time or bytes are counted: a package, a src/ directory, a node: module, or V8's own (GC, idle). */
function placeOf(frame: { functionName: string; url: string }): string {
  const url = frame.url;
  if (!url) return `(${frame.functionName || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const src = /\/src\/([^/]+)\//.exec(url);
  if (src) return `src/${src[1]}`;
  return url.startsWith('node:') ? url : url.split('/').slice(-2).join('/');
}

/** One round under the CPU profiler and the sampling heap profiler: per request, microseconds and bytes by place. */
async function profiled(impl: string, url: string): Promise<{ requests: number; cpu: Map<string, number>; heap: Map<string, number> }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('HeapProfiler.enable');
    await session.post('Profiler.start');
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4_096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    const run = await drive(url);
    const { profile: heapProfile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    const { profile } = await session.post('Profiler.stop');
    const stamp = `bench-api-${impl}-${process.pid}`;
    writeFileSync(join(tmpdir(), `${stamp}.cpuprofile`), JSON.stringify(profile));
    writeFileSync(join(tmpdir(), `${stamp}.heapprofile`), JSON.stringify(heapProfile));
    const cpu = new Map<string, number>();
    const nodes = new Map((profile.nodes as ProfileNode[]).map((n) => [n.id, n]));
    (profile.samples ?? []).forEach((id, i) => {
      const place = placeOf(nodes.get(id)!.callFrame);
      cpu.set(place, (cpu.get(place) ?? 0) + (profile.timeDeltas?.[i] ?? 0) / run.requests);
    });
    const heap = new Map<string, number>();
    const walk = (n: HeapNode) => {
      const place = placeOf(n.callFrame);
      if (n.selfSize) heap.set(place, (heap.get(place) ?? 0) + n.selfSize / run.requests);
      n.children.forEach(walk);
    };
    walk(heapProfile.head);
    return { requests: run.requests, cpu, heap };
  } finally {
    session.disconnect();
  }
}

/** The places that differ most between bare and full, with both sides and the totals. */
function profileRows(what: string, unit: string, bare: Map<string, number>, full: Map<string, number>): string[] {
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const places = [...new Set([...bare.keys(), ...full.keys()])].sort((a, b) => Math.abs((full.get(b) ?? 0) - (bare.get(b) ?? 0)) - Math.abs((full.get(a) ?? 0) - (bare.get(a) ?? 0)));
  const row = (label: string, b: number, f: number) => `${label.padEnd(36)}${b.toFixed(1).padStart(10)}${f.toFixed(1).padStart(10)}${(f - b).toFixed(1).padStart(10)}`;
  return [`${what} per request (${unit})`.padEnd(36) + 'bare'.padStart(10) + 'full'.padStart(10) + 'diff'.padStart(10), row('all', total(bare), total(full)), ...places.slice(0, 20).map((p) => row(p, bare.get(p) ?? 0, full.get(p) ?? 0))];
}

async function main(): Promise<void> {
  const ladder = process.argv.includes('--ladder');
  const profile = process.argv.includes('--profile');
  let profiles: string[] = [];
  const id = randomBytes(5).toString('hex');
  const barePrefix = `bench-api-bare-${id}`;
  const variants = [{ name: 'full', what: 'full server', overrides: {} as Record<string, string> }, ...(ladder ? LADDER : [])];
  const prefixes = [barePrefix, ...variants.map((v) => `bench-api-${v.name}-${id}`)];
  const configOf = (i: number) =>
    loadConfig(process.env, {
      QUEUE_PREFIX: prefixes[i + 1]!,
      RATE_LIMIT_MAX: '100000000',
      MAX_QUEUE_DEPTH: '10000000',
      ALLOW_PRIVATE_TARGETS: 'true',
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
      LOG_FILE: '',
      API_KEYS: API_KEY,
      REDIS_URL,
      ...variants[i]!.overrides,
    });
  const runs: Run[] = [];
  const loadBefore = load();
  const services: Service[] = [];
  let bare: Awaited<ReturnType<typeof startBare>> | null = null;
  try {
    const urls: Record<string, string> = {};
    for (const [i, v] of variants.entries()) {
      const config = configOf(i);
      const logger = createLogger({ level: config.LOG_LEVEL, destination: logDestination('/dev/null') });
      const service = await startService(config, logger, { api: true, workerConcurrency: 0, env: process.env });
      services.push(service);
      urls[v.name] = await service.app!.listen({ port: 0, host: '127.0.0.1' });
    }
    const first = configOf(0);
    bare = await startBare(barePrefix, { attempts: first.SCAN_ATTEMPTS, backoffMs: first.SCAN_BACKOFF });
    urls.bare = bare.url;
    for (const impl of ['bare', ...variants.map((v) => v.name)]) {
      const w = await drive(urls[impl]!, WARMUP_S);
      log(`warm-up: ${impl}: ${w.reqPerSec.toFixed(0)} req/s (not counted)`);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const impl of ['bare', ...variants.map((v) => v.name)]) {
        const r = await drive(urls[impl]!);
        const run: Run = { impl, round, ...r };
        runs.push(run);
        log(`round ${round}: ${impl}: ${run.reqPerSec.toFixed(0)} req/s, p99 ${run.p99} ms, ${run.requests} requests, non-2xx ${run.non2xx}, errors ${run.errors}`);
      }
    }
    if (profile) {
      const bareProfile = await profiled('bare', urls.bare);
      const fullProfile = await profiled('full', urls.full!);
      log(`profiled round: bare ${bareProfile.requests} requests, full ${fullProfile.requests} requests; profiles in ${tmpdir()}`);
      profiles = [...profileRows('CPU', 'µs', bareProfile.cpu, fullProfile.cpu), '', ...profileRows('allocated', 'bytes', bareProfile.heap, fullProfile.heap)];
    }
  } finally {
    await Promise.allSettled([...services.map((s) => s.close(10_000)), bare ? bare.app.close().then(() => bare!.queue.close()).then(() => bare!.redis.quit()) : undefined]);
    const removed = (await Promise.allSettled(prefixes.map((p) => removePrefix(p)))).map((s) => (s.status === 'fulfilled' ? s.value : -1));
    log(`cleanup: removed ${prefixes.map((p, i) => `${removed[i]} keys of ${p}`).join(', ')}`);
  }

  const rows = [`bench:api  POST /api/scans, ${CONNECTIONS} connections, ${DURATION_S} s per run (at most ${MAX_REQUESTS} requests), enqueue only`];
  rows.push(`${'impl'.padEnd(10)}${'round'.padStart(6)}${'req/s'.padStart(10)}${'p99 ms'.padStart(9)}${'requests'.padStart(10)}${'non-2xx'.padStart(9)}${'errors'.padStart(8)}`);
  for (const r of runs) {
    rows.push(`${r.impl.padEnd(10)}${String(r.round).padStart(6)}${r.reqPerSec.toFixed(0).padStart(10)}${String(r.p99).padStart(9)}${String(r.requests).padStart(10)}${String(r.non2xx).padStart(9)}${String(r.errors).padStart(8)}`);
  }
  const full = best(runs, 'full');
  const bareBest = best(runs, 'bare');
  const ratio = full.reqPerSec / bareBest.reqPerSec;
  const non2xx = (impl: string) => runs.filter((r) => r.impl === impl).reduce((n, r) => n + r.non2xx, 0);
  process.stdout.write(`${rows.join('\n')}\n`);
  process.stdout.write(`load average (1 min) ${loadBefore} before, ${load()} after, on ${availableParallelism()} CPUs\n`);
  if (ladder) {
    for (const v of LADDER) {
      const b = best(runs, v.name);
      process.stdout.write(`ladder: ${v.name.padEnd(10)} ${b.reqPerSec.toFixed(0).padStart(6)} req/s, ratio to bare ${(b.reqPerSec / bareBest.reqPerSec).toFixed(2)}, to full ${(b.reqPerSec / full.reqPerSec).toFixed(2)}: ${v.what}\n`);
    }
  }
  if (profiles.length) process.stdout.write(`${profiles.join('\n')}\n`);
  process.stdout.write(
    `best: full ${full.reqPerSec.toFixed(0)} req/s (p99 ${full.p99} ms, round ${full.round}), bare ${bareBest.reqPerSec.toFixed(0)} req/s (p99 ${bareBest.p99} ms, round ${bareBest.round}); non-2xx full ${non2xx('full')}, bare ${non2xx('bare')}\n`,
  );
  // Each round's pair ran back to back: their ratios show how much of the best-of figure is drift.
  const paired = Array.from({ length: ROUNDS }, (_, i) => {
    const [b, f] = ['bare', 'full'].map((impl) => runs.find((r) => r.impl === impl && r.round === i + 1)!);
    return (f!.reqPerSec / b!.reqPerSec).toFixed(2);
  });
  process.stdout.write(`round by round (full/bare): ${paired.join(', ')}\n`);
  process.stdout.write(`ratio=${ratio.toFixed(2)} target>=${TARGET.toFixed(2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:api: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
