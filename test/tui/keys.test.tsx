import { createServer, type AddressInfo } from 'node:net';
import { render } from 'ink-testing-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageResult } from '../../src/domain/scan.js';
import { createLogger } from '../../src/observability/logger.js';
import { workerConnection } from '../../src/queue/redis.js';
import { ResultStore } from '../../src/queue/store.js';
import { startScanWorker, type ScanWorker } from '../../src/queue/worker.js';
import type { Scanner } from '../../src/scanner/types.js';
import { App } from '../../src/tui/App.js';
import { AdminClient } from '../../src/tui/client.js';
import { SnapshotFeed } from '../../src/tui/feed.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { LogSink, startTestService, waitFor, type TestService } from '../support/service.js';
import { seedDlq } from './fixtures.js';

/**
 * The keys against a real server and real Redis: the dashboard (ink-testing-library's terminal)
 * reads the server's event stream, and each action goes through the admin API. A worker with a
 * stand-in scanner that always succeeds runs the replays, so a retried entry really leaves the DLQ.
 */

const TOKEN = 'keys-test-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const KEY = { tab: '\t', down: '\x1b[B', up: '\x1b[A' };

/** Succeeds at once for every URL. */
const okScanner: Scanner = {
  async scan(url: string): Promise<PageResult> {
    return { url, finalUrl: url, status: 'ok', httpStatus: 200, timings: { navigationMs: 1, settleMs: 0, axeMs: 1, totalMs: 2 }, rules: { axeVersion: 'stub', tags: [], ran: [] }, violations: [] };
  },
  stats: () => ({ concurrency: 2, active: 0, scansDone: 0, browserRestarts: 0, browserPid: 1 }),
  close: async () => undefined,
};

let redis: RedisServer;
let svc: TestService;
let worker: ScanWorker;
let workerRedis: ReturnType<typeof workerConnection>;
let feed: SnapshotFeed;
let ui: ReturnType<typeof render>;

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const screen = () => ui.lastFrame() ?? '';
async function press(...keys: string[]): Promise<void> {
  for (const k of keys) {
    ui.stdin.write(k);
    await new Promise((r) => setTimeout(r, 60));
  }
}
const shows = (pattern: RegExp, what = String(pattern), timeoutMs = 20_000) => waitFor(() => pattern.test(screen()), { what: `${what} on screen:\n${screen()}`, timeoutMs, intervalMs: 50 });

beforeAll(async () => {
  redis = await startRedisServer();
  svc = await startTestService({ redisUrl: redis.url, settings: { ADMIN_TOKEN: TOKEN } });
  const base = await svc.service.app!.listen({ port: 0, host: '127.0.0.1' });
  const conn = (workerRedis = workerConnection(redis.url));
  conn.on('error', () => undefined);
  const { keys } = svc.service;
  worker = startScanWorker({
    connection: conn,
    keys,
    scanner: okScanner,
    store: new ResultStore(conn, keys, 60_000, 0),
    logger: createLogger({ level: 'warn', destination: new LogSink() }),
    concurrency: 2,
    scanTimeoutMs: 5_000,
    heartbeatMs: 1_000,
    onReplayCompleted: (dlqId) => svc.service.dlq.replayCompleted(dlqId),
  });
  await seedDlq(svc.service.redis, keys, 3, (i) => `http://127.0.0.1:9/replayed/${i}`);
  const client = new AdminClient({ url: base, token: TOKEN });
  feed = new SnapshotFeed({ client });
  feed.start();
  ui = render(<App feed={feed} actions={client} url={base} size={{ columns: 100, rows: 30 }} />);
  await shows(/DLQ 3 entries/);
});

afterAll(async () => {
  ui?.unmount();
  feed?.stop();
  await worker?.close(2_000);
  workerRedis?.disconnect();
  await svc?.close();
  await redis?.close();
});

describe('top: keys against a real server', () => {
  it('r on the selected DLQ entry asks, retries it through the API, and the entry leaves the DLQ', async () => {
    const { entries } = (await svc.get('/admin/dlq/jobs?limit=10', AUTH)).json as { entries: Array<{ id: string }> };
    const newest = entries[0]!.id;
    await shows(new RegExp(`› ${newest.slice(0, 20)}`), 'the newest entry selected');
    await press('r');
    await shows(/Retry DLQ entry dlq_\S+ \(127\.0\.0\.1:9, [A-Z_]+\)\? \(y\/n\)/, 'the confirmation');
    // n cancels; nothing is retried.
    await press('n');
    await shows(/cancelled/);
    await press('r', 'y');
    await shows(new RegExp(`${newest} retried as scan \\S+`), 'the result');
    await waitFor(async () => (await svc.get(`/admin/dlq/jobs/${newest}`, AUTH)).status === 404, { what: `${newest} to leave the DLQ`, timeoutMs: 20_000 });
    await shows(/DLQ 2 entries/);
    // Gone from the list (the status line still names it).
    expect(screen()).not.toMatch(new RegExp(`^[ ›·] ${newest.slice(0, 20)}`, 'm'));
  });

  it('R retries every entry shown after confirmation', async () => {
    await press('R');
    await shows(/Retry all 2 DLQ entries shown\? \(y\/n\)/);
    await press('y');
    await shows(/retried 2 of 2 entries/);
    await shows(/DLQ 0 entries/);
    expect((await svc.get('/admin/dlq/stats', AUTH)).json.total).toBe(0);
  });

  it('p pauses and resumes the queue (with confirmation each time)', async () => {
    await press('p');
    await shows(/Pause the queue .*\(y\/n\)/);
    await press('y');
    await shows(/queue paused/);
    expect(await svc.service.queue.isPaused()).toBe(true);
    await shows(/QUEUE PAUSED/);
    await press('p');
    await shows(/Resume the queue\? \(y\/n\)/);
    await press('y');
    await shows(/queue resumed/);
    expect(await svc.service.queue.isPaused()).toBe(false);
  });

  it('x resets the selected breaker fleet-wide', async () => {
    expect((await svc.post('/admin/breakers/apollo/isolate', {}, AUTH)).status).toBe(200);
    await shows(/apollo +ISOLATED/);
    // dlq -> alerts -> queue -> breakers; then down from ai to apollo.
    await press(KEY.tab, KEY.tab, KEY.tab);
    await shows(/▶ BREAKERS/);
    await press('x');
    await shows(/Reset breaker ai fleet-wide/);
    await press('n', KEY.down, 'x');
    await shows(/Reset breaker apollo fleet-wide \(now ISOLATED, \d+ failures\)\? \(y\/n\)/);
    await press('y');
    await shows(/breaker apollo reset/);
    await shows(/apollo +CLOSED/);
  });

  it('an action the server refuses shows its problem detail', async () => {
    // Focus the DLQ again; it is empty now, so r says so without calling anything.
    await press(KEY.tab, KEY.tab);
    await shows(/▶ DLQ/);
    await press('r');
    await shows(/the DLQ shows no entry to retry/);
    const client = new AdminClient({ url: `http://127.0.0.1:${(svc.service.app!.server.address() as { port: number }).port}`, token: TOKEN });
    expect(await client.retryDlq('dlq_missing')).toEqual({ ok: false, message: 'NOT_FOUND: no DLQ entry with id dlq_missing' });
    const port = await closedPort();
    expect(await new AdminClient({ url: `http://127.0.0.1:${port}`, token: TOKEN }).setPaused(true)).toEqual({ ok: false, message: `cannot reach http://127.0.0.1:${port}: ECONNREFUSED` });
  });

  it('? shows the help and q quits', async () => {
    await press('?');
    await shows(/KEYS/);
    await press('?');
    await shows(/▶ DLQ/);
    await press('q');
    await waitFor(() => ui.frames.length > 0, { what: 'exit' });
  });
});
