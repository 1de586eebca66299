import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DlqEntry } from '../../src/domain/dlq.js';
import type { ScanJobData } from '../../src/queue/job.js';
import { DlqStore } from '../../src/queue/dlq-store.js';
import { startLockedRedisServer, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';
import { runCli, type CliRun } from './run-cli.js';

/**
 * `wcagai dlq` (the compiled CLI, as operators run it) against a test Redis, and through a
 * running server with --url/--token: both must say what the admin routes say. No worker runs,
 * so replays stay queued where the test can see them.
 */

const TOKEN = 'dlq-cli-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let redis: RedisServer;
let svc: TestService;
let serverUrl: string;
let seeded: DlqEntry[];

const DAY = 86_400_000;
const now = Date.now();

function seed(n: number, code: string, host: string, ageMs: number): DlqEntry {
  const at = new Date(now - ageMs).toISOString();
  const url = `https://${host}/page-${n}`;
  return {
    id: `dlq_cli${n}`,
    jobId: `scan_cli${n}`,
    request: { url, options: { wcagLevel: 'AA', wcagVersion: '2.2', bestPractice: false }, priority: 'normal' },
    host,
    code,
    message: `${url} failed`,
    retryable: true,
    attemptsMade: 3,
    attempts: [1, 2, 3].map((attempt) => ({ attempt, jobId: `scan_cli${n}`, code, message: `${url} failed (${attempt})`, at })),
    firstFailedAt: at,
    lastFailedAt: at,
    requestId: `req-cli-${n}`,
    retries: [],
    status: 'dead',
  };
}

/** Runs `wcagai dlq …` against the test Redis (or a server, when the args say --url). */
function dlq(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['dlq', ...args], { env: { REDIS_URL: redis.url, QUEUE_PREFIX: svc.prefix, LOG_LEVEL: 'silent', ...env }, timeoutMs: 60_000 });
}

const remote = () => ['--url', serverUrl, '--token', TOKEN];

function json<T>(run: CliRun): T {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

function expectOneLineError(run: CliRun, pattern: RegExp): void {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(pattern);
}

beforeAll(async () => {
  redis = await startRedisServer();
  svc = await startTestService({ redisUrl: redis.url, settings: { ADMIN_TOKEN: TOKEN } });
  serverUrl = await svc.service.app!.listen({ port: 0, host: '127.0.0.1' });
  seeded = [
    seed(1, 'HTTP_SERVER_ERROR', 'a.example', 1 * 60_000),
    seed(2, 'HTTP_SERVER_ERROR', 'b.example', 2 * 60_000),
    seed(3, 'HTTP_CLIENT_ERROR', 'a.example', 3 * 60_000),
    seed(4, 'NAVIGATION_TIMEOUT', 'c.example', 1 * DAY),
    seed(5, 'HTTP_CLIENT_ERROR', 'old.example', 40 * DAY),
    seed(6, 'DNS_FAILURE', 'old.example', 45 * DAY),
  ];
  const store = new DlqStore(svc.service.redis, svc.service.keys);
  for (const e of seeded) await store.write(e.id, e, '', e.jobId);
});

afterAll(async () => {
  await svc?.close();
  await redis?.close();
});

async function routeList(query = ''): Promise<Array<{ id: string; url: string; code: string; failedAt: string }>> {
  const res = await svc.get(`/admin/dlq/jobs?limit=100${query}`, AUTH);
  expect(res.status, res.body).toBe(200);
  return (res.json.entries as DlqEntry[]).map((e) => ({ id: e.id, url: e.request.url, code: e.code, failedAt: e.lastFailedAt }));
}

const rowKeys = (rows: Array<Record<string, unknown>>) => rows.map((r) => ({ id: r.id, url: r.url, code: r.code, failedAt: r.failedAt }));

describe('wcagai dlq', () => {
  it('list and stats print what the admin routes answer, from Redis and through a server', async () => {
    const [direct, viaServer, stats, remoteStats, byCode, byHost] = await Promise.all([
      dlq(['list', '--json', '--limit', '100']),
      dlq(['list', '--json', '--limit', '100', ...remote()]),
      dlq(['stats', '--json']),
      dlq(['stats', '--json', ...remote()]),
      dlq(['list', '--json', '--code', 'HTTP_SERVER_ERROR']),
      dlq(['list', '--json', '--host', 'a.example']),
    ]);
    const routes = await routeList();
    expect(routes.map((r) => r.id)).toEqual(seeded.map((e) => e.id));
    expect(rowKeys(json(direct))).toEqual(routes);
    expect(rowKeys(json(viaServer))).toEqual(routes);
    const routeStats = (await svc.get('/admin/dlq/stats', AUTH)).json;
    expect(json(stats)).toEqual(routeStats);
    expect(json(remoteStats)).toEqual(routeStats);
    expect(routeStats).toMatchObject({ total: 6, byCode: { HTTP_SERVER_ERROR: 2, HTTP_CLIENT_ERROR: 2, NAVIGATION_TIMEOUT: 1, DNS_FAILURE: 1 }, byHost: { 'a.example': 2, 'old.example': 2 } });
    expect(rowKeys(json(byCode))).toEqual(await routeList('&code=HTTP_SERVER_ERROR'));
    expect(rowKeys(json(byHost))).toEqual(await routeList('&host=a.example'));
  });

  it('prints tables without --json, and one entry in full with show', async () => {
    const [list, show, stats] = await Promise.all([dlq(['list', '--limit', '2']), dlq(['show', 'dlq_cli1']), dlq(['stats'])]);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+FAILED AT\s+CODE\s+ATTEMPTS\s+STATUS\s+URL$/);
    expect(lines[1]).toMatch(/^dlq_cli1\s.*HTTP_SERVER_ERROR\s+3\s+dead\s+https:\/\/a\.example\/page-1$/);
    expect(lines[2]).toMatch(/^dlq_cli2\s/);
    expect(lines[3]).toMatch(/^more entries: --cursor \S+$/);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^id\s+dlq_cli1$/m);
    expect(show.stdout).toMatch(/^request id\s+req-cli-1$/m);
    expect(show.stdout.match(/scan_cli1 #\d/g)).toHaveLength(3);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toMatch(/^6 entries, oldest /);
    expect(stats.stdout).toMatch(/^HTTP_SERVER_ERROR\s+2$/m);
  });

  it('answers an unknown id with one line and exit 1, from Redis and through a server', async () => {
    const runs = await Promise.all([
      dlq(['show', 'dlq_nope']),
      dlq(['retry', 'dlq_nope']),
      dlq(['delete', 'dlq_nope']),
      dlq(['show', 'dlq_nope', ...remote()]),
      dlq(['retry', 'dlq_nope', ...remote()]),
    ]);
    for (const run of runs) expectOneLineError(run, /^wcagai: no DLQ entry with id dlq_nope\n$/);
    expectOneLineError(await dlq(['show', 'dlq_cli1', '--url', serverUrl, '--token', 'wrong-token-0123456789']), /^wcagai: the bearer token is not this server's ADMIN_TOKEN\n$/);
    expectOneLineError(await dlq(['show', 'dlq_cli1', '--url', serverUrl], { ADMIN_TOKEN: '' }), /^wcagai: admin routes need Authorization: Bearer <ADMIN_TOKEN>\n$/);
  });

  it('refuses a bulk retry without --yes when there is no terminal to ask on', async () => {
    const before = await svc.service.queue.count();
    const run = await dlq(['retry', '--code', 'HTTP_SERVER_ERROR']);
    expectOneLineError(run, /^wcagai: refusing to retry 2 entries \(code HTTP_SERVER_ERROR\) without --yes/);
    expectOneLineError(await dlq(['retry']), /exactly one of --all, --code C, --host H/);
    expectOneLineError(await dlq(['retry', 'dlq_cli1', '--all']), /not both/);
    expect(await svc.service.queue.count()).toBe(before);
  });

  it('retries one entry and a filter, queueing replays linked to their entries', async () => {
    const one = await dlq(['retry', 'dlq_cli4']);
    expect(one.code, one.stderr).toBe(0);
    const jobId = /^retrying dlq_cli4 as scan (scan_\S+)$/.exec(one.stdout.trim())?.[1];
    expect(jobId).toBeDefined();
    const job = await svc.service.queue.getJob(jobId!);
    expect(job?.data as ScanJobData).toMatchObject({ url: 'https://c.example/page-4', dlqId: 'dlq_cli4', requestId: 'req-cli-4' });
    const entry = (await svc.get('/admin/dlq/jobs/dlq_cli4', AUTH)).json as DlqEntry;
    expect(entry).toMatchObject({ status: 'retrying', retries: [{ jobId, outcome: 'pending' }] });
    // A second retry while the first is queued is refused.
    expectOneLineError(await dlq(['retry', 'dlq_cli4', ...remote()]), /already being retried as scan/);

    const bulk = json<{ matched: number; retried: Array<{ id: string; jobId: string }> }>(await dlq(['retry', '--host', 'a.example', '--yes', '--json']));
    expect(bulk.matched).toBe(2);
    expect(bulk.retried.map((r) => r.id).sort()).toEqual(['dlq_cli1', 'dlq_cli3']);
    const stats = (await svc.get('/admin/dlq/stats', AUTH)).json;
    expect(stats.total).toBe(6);
  });

  it('purges by age and deletes by id', async () => {
    expectOneLineError(await dlq(['purge', '--older-than', 'soon']), /--older-than expects a duration/);
    // A bare number would be milliseconds: everything older than 30 ms is the whole DLQ.
    expectOneLineError(await dlq(['purge', '--older-than', '30']), /--older-than expects a duration with its unit such as 12h or 30d, got "30"/);
    const purge = await dlq(['purge', '--older-than', '30d']);
    expect(purge.code, purge.stderr).toBe(0);
    expect(purge.stdout).toBe('removed 2 entries older than 30d\n');
    const del = await dlq(['delete', 'dlq_cli2', ...remote()]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toBe('deleted dlq_cli2\n');
    expect((await routeList()).map((r) => r.id)).toEqual(['dlq_cli1', 'dlq_cli3', 'dlq_cli4']);
    expect(json(await dlq(['stats', '--json']))).toMatchObject({ total: 3, byHost: { 'a.example': 2, 'c.example': 1 } });
  });

  it('exits 1 when a bulk retry stopped early on a full queue: the rest stay dead', async () => {
    const store = new DlqStore(svc.service.redis, svc.service.keys);
    for (const n of [7, 8, 9]) {
      const e = seed(n, 'HTTP_SERVER_ERROR', 'full.example', n * 60_000);
      await store.write(e.id, e, '', e.jobId);
    }
    // Room for one more scan: the first replay is queued, the next meets QUEUE_FULL.
    const room = { MAX_QUEUE_DEPTH: String((await svc.service.queue.count()) + 1) };
    const text = await dlq(['retry', '--host', 'full.example', '--yes'], room);
    expect(text.code, text.stdout + text.stderr).toBe(1);
    expect(text.stdout).toMatch(/^retried 1 of 3 matching entries$/m);
    expect(text.stdout).toMatch(/^stopped early: .*QUEUE_FULL|^stopped early: .*queue/m);
    const stats = (await svc.get('/admin/dlq/stats', AUTH)).json;
    expect(stats.byHost['full.example']).toBe(3);
  });

  it('never prints the password of a --url holding user:password@ (dlq, top, stress)', async () => {
    const url = 'http://ops:pw-s3cret-77@127.0.0.1:9';
    const runs = await Promise.all([
      dlq(['list', '--url', url, '--token', TOKEN]),
      runCli(['top', '--once', '--url', url, '--token', TOKEN]),
      runCli(['stress', '--url', url, '--token', 'k', '--duration', '1s']),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stdout + run.stderr).not.toContain('pw-s3cret-77');
      expect(run.stderr).toContain('127.0.0.1:9');
    }
  });

  it('says in one line when Redis cannot be reached', async () => {
    const run = await dlq(['stats'], { REDIS_URL: 'redis://127.0.0.1:9' });
    expectOneLineError(run, /^wcagai: cannot reach Redis at redis:\/\/127\.0\.0\.1:9/);
  });

  it('says in one line when Redis refuses the password, with the --url way round it', async () => {
    // A Redis of its own: the shared one of this file must keep answering without a password.
    const locked = await startLockedRedisServer('right-pw-0123');
    try {
      const [wrong, none] = await Promise.all([
        dlq(['stats'], { REDIS_URL: `redis://:wrong-pw@127.0.0.1:${locked.port}` }),
        dlq(['list'], { REDIS_URL: locked.url }),
      ]);
      expectOneLineError(wrong, /^wcagai: Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+\S* refused the credentials \(WRONGPASS [^)]*\); check the password in REDIS_URL, or --url to use a server$/m);
      expect(wrong.stderr).not.toContain('wrong-pw');
      expectOneLineError(none, /^wcagai: Redis at \S+ requires a password \(NOAUTH [^)]*\); check the password in REDIS_URL, or --url to use a server$/m);
    } finally {
      await locked.close();
    }
  });
});
