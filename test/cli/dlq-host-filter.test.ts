import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DlqEntry } from '../../src/domain/dlq.js';
import { DlqStore } from '../../src/queue/dlq-store.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';
import { runCli } from './run-cli.js';

/** A DLQ host filter that is a URL matches no entry: it is refused, by the admin API and by `wcagai dlq`. */

const TOKEN = 'dlq-host-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SHOP_URL = 'https://shop.example.com/';

let redis: RedisServer;
let svc: TestService;

function entry(): DlqEntry {
  const at = new Date().toISOString();
  return {
    id: 'dlq_hostfilter1',
    jobId: 'scan_hostfilter1',
    request: { url: `${SHOP_URL}checkout`, options: { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false }, priority: 'normal' },
    host: 'shop.example.com',
    code: 'HTTP_SERVER_ERROR',
    message: 'answered 500',
    retryable: true,
    attemptsMade: 1,
    attempts: [{ attempt: 1, jobId: 'scan_hostfilter1', code: 'HTTP_SERVER_ERROR', message: 'answered 500', at }],
    firstFailedAt: at,
    lastFailedAt: at,
    requestId: 'req-host-filter',
    retries: [],
    status: 'dead',
  };
}

beforeAll(async () => {
  redis = await startRedisServer();
  svc = await startTestService({ redisUrl: redis.url, settings: { ADMIN_TOKEN: TOKEN } });
  const e = entry();
  await new DlqStore(svc.service.redis, svc.service.keys).write(e.id, e, '', e.jobId);
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

describe('DLQ host filter', () => {
  it('the admin API answers 400 naming host for a URL, and still takes a host however it is spelled', async () => {
    const list = await svc.get(`/admin/dlq/jobs?host=${encodeURIComponent(SHOP_URL)}`, AUTH);
    expect(list.status, list.body).toBe(400);
    expect(list.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(list.json.errors).toEqual([{ field: 'host', message: expect.stringMatching(/not a URL/) }]);

    const bulk = await svc.post('/admin/dlq/retry', { host: SHOP_URL }, AUTH);
    expect(bulk.status, bulk.body).toBe(400);
    expect(bulk.json.errors).toEqual([{ field: 'host', message: expect.stringMatching(/not a URL/) }]);
    const kept = await svc.get('/admin/dlq/jobs/dlq_hostfilter1', AUTH);
    expect(kept.json.status).toBe('dead');

    const spelled = await svc.get(`/admin/dlq/jobs?host=${encodeURIComponent('Shop.Example.com:443')}`, AUTH);
    expect(spelled.status, spelled.body).toBe(200);
    expect(spelled.json.entries.map((e: DlqEntry) => e.id)).toEqual(['dlq_hostfilter1']);
  });

  it('wcagai dlq list/retry --host with a URL says so in one line and exits 1', async () => {
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: svc.prefix, LOG_LEVEL: 'silent' };
    for (const args of [
      ['dlq', 'list', '--host', SHOP_URL],
      ['dlq', 'retry', '--host', SHOP_URL, '--yes'],
    ]) {
      const run = await runCli(args, { env, timeoutMs: 60_000 });
      expect(run.code, `${args.join(' ')}: ${run.stdout}${run.stderr}`).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(`--host expects a host such as shop.example.com or host:port (not a URL), got "${SHOP_URL}"`);
    }
    const listed = await runCli(['dlq', 'list', '--host', 'shop.example.com', '--json'], { env, timeoutMs: 60_000 });
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((r) => r.id)).toEqual(['dlq_hostfilter1']);
  });
});
