/**
 * Error reporting beyond HTTP answers: a scan that fails for an unexpected reason (INTERNAL) is
 * reported by the worker with its job and request ids, a page's own failure is not, and the
 * process handlers of `serve` and `worker` report unhandled rejections and uncaught exceptions
 * before the process exits. Events go to a local stand-in for Sentry's ingest.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { createLogger } from '../../src/observability/logger.js';
import { initErrorReporting } from '../../src/observability/sentry.js';
import { cacheKeyOf, JOB_SCHEMA_VERSION } from '../../src/queue/job.js';
import { keysFor } from '../../src/queue/keys.js';
import { producerConnection, workerConnection } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { startScanWorker } from '../../src/queue/worker.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startSentryIngest, type SentryIngest } from '../support/sentry-ingest.js';
import { stubResult, stubScanner } from '../support/stub-results.js';
import { LogSink, uniquePrefix, waitFor } from '../support/service.js';

let redis: RedisServer;
let ingest: SentryIngest;

beforeAll(async () => {
  [redis, ingest] = await Promise.all([startRedisServer(), startSentryIngest()]);
});

afterAll(async () => {
  await Promise.allSettled([redis?.close(), ingest?.close()]);
});

/**
 * Stands in for the engine failing in a way no page can cause (the code INTERNAL marks a bug of
 * ours): URLs with "bug" fail so, the others with a page's own 500, which is not ours to report.
 */
const buggyScanner = stubScanner((url) => {
  const bug = url.includes('bug');
  return stubResult(url, {
    httpStatus: bug ? 200 : 500,
    error: bug ? { code: 'INTERNAL', message: 'the engine tripped over itself', retryable: false } : { code: 'HTTP_SERVER_ERROR', message: `${url} answered 500`, retryable: false },
  });
});

describe('error reporting in the worker and the process handlers', () => {
  it('reports a scan failed with INTERNAL, tagged with its job and request ids, and not a page that answered 500', async () => {
    const keys = keysFor(uniquePrefix('sentry'));
    const producer = producerConnection(redis.url);
    const queue = new Queue(keys.queueName, { connection: producer, prefix: keys.bullPrefix });
    const conn = workerConnection(redis.url);
    const reporter = await initErrorReporting({ dsn: ingest.dsn, logger: { info: () => undefined, warn: () => undefined } });
    const worker = startScanWorker({ connection: conn, keys, scanner: buggyScanner, store: new ResultStore(conn, keys, 60_000, 0), logger: createLogger({ level: 'fatal', destination: new LogSink() }), concurrency: 1, scanTimeoutMs: 5_000, reporter });
    try {
      for (const [id, url, requestId] of [['scan_page500', 'http://127.0.0.1:9/page', 'req_page'], ['scan_bug1', 'http://127.0.0.1:9/bug', 'req_bug']] as const) {
        await queue.add('scan', { v: JOB_SCHEMA_VERSION, url, options: DEFAULT_SCAN_OPTIONS, cacheKey: cacheKeyOf(url, DEFAULT_SCAN_OPTIONS), requestId }, { jobId: id, attempts: 1 });
      }
      await waitFor(async () => (await queue.getJobState('scan_bug1')) === 'failed' && (await queue.getJobState('scan_page500')) === 'failed', { timeoutMs: 20_000, what: 'both jobs failed' });
      expect(await reporter.flush(5_000)).toBe(true);
      const events = ingest.events();
      expect(events).toHaveLength(1);
      expect(events[0]!.tags).toMatchObject({ job_id: 'scan_bug1', request_id: 'req_bug' });
      expect(events[0]!.exception?.values?.[0]?.value).toContain('the engine tripped over itself');
    } finally {
      await worker.close(2_000);
      await reporter.close(1_000);
      await queue.close();
      conn.disconnect();
      producer.disconnect();
    }
  });

  it('reports an unhandled rejection and an uncaught exception, then exits 1', async () => {
    ingest.received.length = 0;
    const child = spawn(process.execPath, [fileURLToPath(new URL('../support/crash-child.mjs', import.meta.url))], {
      env: { ...process.env, SENTRY_DSN: ingest.dsn },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, out).toBe(1);
    expect(out).toContain('💥 uncaught exception: thrown from a timer');
    const messages = ingest.events().map((e) => e.exception?.values?.[0]?.value);
    expect(messages).toEqual(expect.arrayContaining(['a rejection nobody handled', 'thrown from a timer']));
  });
});
