/**
 * bench:api: submission throughput of the full API (POST /api/scans, enqueue only, no worker)
 * against a bare Fastify route doing the same BullMQ `queue.add`. Usage: `npm run bench:api`.
 *
 * Both run in this process on loopback, each under a private queue prefix removed at the end.
 * The full server has its hardening on as deployed: API key auth, the Redis-backed rate limiter
 * (with a limit no run reaches, so it counts every request without refusing one), request logs
 * at info (written to /dev/null: their cost without a terminal's), metrics, security headers.
 * Runs alternate bare, full, bare, full so drift in machine load hits both sides alike; the best
 * round of each counts.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import pino from 'pino';
import { startService, type Service } from '../../src/app/service.js';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { createLogger } from '../../src/observability/logger.js';
import { cacheKeyOf, JOB_SCHEMA_VERSION, newScanId } from '../../src/queue/job.js';
import { keysFor } from '../../src/queue/keys.js';
import { scanJobOptions } from '../../src/queue/producer.js';
import { producerConnection, waitReady } from '../../src/queue/redis.js';

type Impl = 'bare' | 'full';

interface Run {
  impl: Impl;
  round: number;
  requests: number;
  reqPerSec: number;
  p99: number;
  non2xx: number;
  errors: number;
}

const TARGET = 0.8;
const API_KEY = `bench-${randomBytes(12).toString('hex')}`;
const ROUNDS = 2;
const CONNECTIONS = 100;
const DURATION_S = 10;
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

async function drive(baseUrl: string): Promise<Omit<Run, 'impl' | 'round'>> {
  const result = await autocannon({
    url: `${baseUrl}/api/scans`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    maxOverallRequests: MAX_REQUESTS,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ url: `http://127.0.0.1:9/p${counter++}` }) }),
      },
    ],
  });
  const seconds = result.duration || DURATION_S;
  return {
    requests: result.requests.total,
    reqPerSec: result.requests.total / seconds,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function best(runs: readonly Run[], impl: Impl): Run {
  return runs.filter((r) => r.impl === impl).reduce((a, r) => (a.reqPerSec >= r.reqPerSec ? a : r));
}

async function main(): Promise<void> {
  const id = randomBytes(5).toString('hex');
  const fullPrefix = `bench-api-full-${id}`;
  const barePrefix = `bench-api-bare-${id}`;
  const config = loadConfig(process.env, {
    QUEUE_PREFIX: fullPrefix,
    RATE_LIMIT_MAX: '100000000',
    MAX_QUEUE_DEPTH: '10000000',
    ALLOW_PRIVATE_TARGETS: 'true',
    LOG_LEVEL: 'info',
    LOG_PRETTY: 'false',
    LOG_FILE: '',
    API_KEYS: API_KEY,
    REDIS_URL,
  });
  const logger = createLogger({ level: config.LOG_LEVEL, destination: pino.destination({ dest: '/dev/null', sync: false }) });
  const runs: Run[] = [];
  const loadBefore = load();
  let service: Service | null = null;
  let bare: Awaited<ReturnType<typeof startBare>> | null = null;
  try {
    service = await startService(config, logger, { api: true, workerConcurrency: 0, env: process.env });
    const fullUrl = await service.app!.listen({ port: 0, host: '127.0.0.1' });
    bare = await startBare(barePrefix, { attempts: config.SCAN_ATTEMPTS, backoffMs: config.SCAN_BACKOFF });
    const urls: Record<Impl, string> = { full: fullUrl, bare: bare.url };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const impl of ['bare', 'full'] as const) {
        const r = await drive(urls[impl]);
        const run: Run = { impl, round, ...r };
        runs.push(run);
        log(`round ${round}: ${impl}: ${run.reqPerSec.toFixed(0)} req/s, p99 ${run.p99} ms, ${run.requests} requests, non-2xx ${run.non2xx}, errors ${run.errors}`);
      }
    }
  } finally {
    await Promise.allSettled([service?.close(10_000), bare ? bare.app.close().then(() => bare!.queue.close()).then(() => bare!.redis.quit()) : undefined]);
    const removed = (await Promise.allSettled([removePrefix(fullPrefix), removePrefix(barePrefix)])).map((s) => (s.status === 'fulfilled' ? s.value : -1));
    log(`cleanup: removed ${removed[0]} keys of ${fullPrefix}, ${removed[1]} of ${barePrefix}`);
  }

  const rows = [`bench:api  POST /api/scans, ${CONNECTIONS} connections, ${DURATION_S} s per run (at most ${MAX_REQUESTS} requests), enqueue only`];
  rows.push(`${'impl'.padEnd(6)}${'round'.padStart(6)}${'req/s'.padStart(10)}${'p99 ms'.padStart(9)}${'requests'.padStart(10)}${'non-2xx'.padStart(9)}${'errors'.padStart(8)}`);
  for (const r of runs) {
    rows.push(`${r.impl.padEnd(6)}${String(r.round).padStart(6)}${r.reqPerSec.toFixed(0).padStart(10)}${String(r.p99).padStart(9)}${String(r.requests).padStart(10)}${String(r.non2xx).padStart(9)}${String(r.errors).padStart(8)}`);
  }
  const full = best(runs, 'full');
  const bareBest = best(runs, 'bare');
  const ratio = full.reqPerSec / bareBest.reqPerSec;
  const non2xx = (impl: Impl) => runs.filter((r) => r.impl === impl).reduce((n, r) => n + r.non2xx, 0);
  process.stdout.write(`${rows.join('\n')}\n`);
  process.stdout.write(`load average (1 min) ${loadBefore} before, ${load()} after, on ${availableParallelism()} CPUs\n`);
  process.stdout.write(
    `best: full ${full.reqPerSec.toFixed(0)} req/s (p99 ${full.p99} ms, round ${full.round}), bare ${bareBest.reqPerSec.toFixed(0)} req/s (p99 ${bareBest.p99} ms, round ${bareBest.round}); non-2xx full ${non2xx('full')}, bare ${non2xx('bare')}\n`,
  );
  process.stdout.write(`ratio=${ratio.toFixed(2)} target>=${TARGET.toFixed(2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:api: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
