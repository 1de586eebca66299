import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { runCli } from '../cli/run-cli.js';
import { startTestService, uniquePrefix, type JsonResponse, type TestService } from '../support/service.js';

let redis: RedisServer;
const services: TestService[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  await Promise.allSettled(services.map((s) => s.close()));
  await redis?.close();
});

async function service(settings: Record<string, string>, prefix?: string): Promise<TestService> {
  const svc = await startTestService({ redisUrl: redis.url, settings, ...(prefix ? { prefix } : {}) });
  services.push(svc);
  return svc;
}

function expectUnauthorized(res: JsonResponse, what: string): void {
  expect(res.status, `${what}: ${res.body}`).toBe(401);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(res.headers['www-authenticate'], what).toMatch(/^Bearer realm=/);
  expect(res.json).toMatchObject({ status: 401, code: 'UNAUTHORIZED', type: 'urn:wcagai:problem:unauthorized' });
  expect(res.json.requestId).toBe(res.headers['x-request-id']);
}

const ADMIN_TOKEN = 'adm1n-T0ken-4f9c2e7b1d';
const KEY_A = 'key-alpha-93kd02';
const KEY_B = 'key-bravo-17xq55';

describe('admin routes', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await service({ ADMIN_TOKEN, API_KEYS: `${KEY_A},${KEY_B}` });
  });

  it('refuse without a token, with a wrong one and with near misses, and leave the queue running', async () => {
    const last = ADMIN_TOKEN.at(-1)!;
    const attempts: Array<[string, Record<string, string>]> = [
      ['no token', {}],
      ['wrong token', { authorization: 'Bearer totally-wrong-token-value' }],
      ['one character off', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}${last === 'd' ? 'e' : 'd'}` }],
      ['prefix', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
      ['longer', { authorization: `Bearer ${ADMIN_TOKEN}x` }],
      ['other case', { authorization: `Bearer ${ADMIN_TOKEN.toUpperCase()}` }],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['no scheme', { authorization: ADMIN_TOKEN }],
      ['basic scheme', { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }],
      ['as X-API-Key', { 'x-api-key': ADMIN_TOKEN }],
      ['an API key', { authorization: `Bearer ${KEY_A}` }],
    ];
    for (const [what, headers] of attempts) {
      expectUnauthorized(await svc.request({ method: 'POST', url: '/admin/queue/pause', headers }), what);
      expectUnauthorized(await svc.request({ method: 'POST', url: '/admin/queue/resume', headers }), `${what} (resume)`);
    }
    expectUnauthorized(await svc.request({ method: 'POST', url: `/admin/queue/pause?token=${ADMIN_TOKEN}` }), 'token in the query');
    expect(await svc.service.queue.isPaused()).toBe(false);
    // A token sent and wrong is told apart from none, without a word of the right one.
    expect((await svc.request({ method: 'POST', url: '/admin/queue/pause' })).json.detail).toBe('admin routes need Authorization: Bearer <ADMIN_TOKEN>');
    expect((await svc.request({ method: 'POST', url: '/admin/queue/pause', headers: { authorization: 'Bearer totally-wrong-token-value' } })).json.detail).toBe("the bearer token is not this server's ADMIN_TOKEN");
    expect((await svc.post('/api/scans', { url: 'http://127.0.0.1:9/no-key' })).json.detail).toMatch(/^an API key is required/);
    expect((await svc.post('/api/scans', { url: 'http://127.0.0.1:9/wrong-key' }, { 'x-api-key': 'not-a-key-of-this-server' })).json.detail).toBe("the API key is not one of this server's API_KEYS");
    expect(svc.logs.events('admin.queue.pause')).toEqual([]);
  });

  it('pause and resume the queue with the right token', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const paused = await svc.request({ method: 'POST', url: '/admin/queue/pause', headers: auth });
    expect(paused.status, paused.body).toBe(200);
    expect(paused.json).toEqual({ paused: true });
    expect(await svc.service.queue.isPaused()).toBe(true);
    // A paused queue still accepts scans; they wait.
    const accepted = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/while-paused' }, { 'x-api-key': KEY_A });
    expect(accepted.status, accepted.body).toBe(202);
    expect(await svc.service.queue.count()).toBe(1);

    const resumed = await svc.request({ method: 'POST', url: '/admin/queue/resume', headers: auth });
    expect(resumed.status, resumed.body).toBe(200);
    expect(resumed.json).toEqual({ paused: false });
    expect(await svc.service.queue.isPaused()).toBe(false);
    expect(svc.logs.events('admin.queue.pause')).toHaveLength(1);
    expect(svc.logs.events('admin.queue.resume')).toHaveLength(1);
    // The admin routes take POST only.
    const get = await svc.request({ method: 'GET', url: '/admin/queue/pause', headers: auth });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
  });
});

describe('wcagai queue', () => {
  it('shows, pauses and resumes the queue through the admin API, and refuses a wrong token with one line and exit 1', async () => {
    const { base, svc } = await listening({ ADMIN_TOKEN });
    const cli = (...args: string[]) => runCli(['queue', ...args, '--url', base], { env: { WCAGAI_URL: '', ADMIN_TOKEN } });

    const status = await cli('status', '--json');
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ paused: false, waiting: 0, active: 0, maxCapacity: 1000, state: 'healthy' });

    const paused = await cli('pause');
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/^queue paused: /);
    expect(await svc.service.queue.isPaused()).toBe(true);
    // Read at the request: the pause shows at once.
    const text = (await cli('status')).stdout;
    expect(text).toMatch(/^queue: paused/);
    expect(text).toMatch(/^jobs: 0 waiting, 0 active, 0 delayed, 0 failed, 0 completed/m);
    expect(text).toMatch(/^capacity: 0 of 1000 \(0 %\), healthy$/m);

    const wrong = await runCli(['queue', 'resume', '--url', base, '--token', 'not-the-admin-token-at-all'], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrong.stderr).toMatch(/^wcagai: POST \/admin\/queue\/resume: the bearer token is not this server's ADMIN_TOKEN$/m);
    expect(await svc.service.queue.isPaused()).toBe(true);

    // A token read from a secret file ends in a newline: fetch drops it, as the server drops it from its own.
    const fromFile = await runCli(['queue', 'status', '--json', '--url', base], { env: { WCAGAI_URL: '', ADMIN_TOKEN: `${ADMIN_TOKEN}\n` } });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ paused: true });

    const resumed = await cli('resume', '--json');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout)).toEqual({ paused: false });
    expect(await svc.service.queue.isPaused()).toBe(false);
  });
});

describe('API keys', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await service({ API_KEYS: ` ${KEY_A} , ${KEY_B} ` });
  });

  it('/api/* needs a key, by Bearer or X-API-Key', async () => {
    expectUnauthorized(await svc.post('/api/scans', { url: 'http://127.0.0.1:9/a' }), 'no key');
    expectUnauthorized(await svc.post('/api/scans', { url: 'http://127.0.0.1:9/a' }, { 'x-api-key': 'key-alpha-93kd0' }), 'prefix of a key');
    expectUnauthorized(await svc.post('/api/scans', { url: 'http://127.0.0.1:9/a' }, { authorization: `Bearer ${KEY_A},${KEY_B}` }), 'the list itself');
    expectUnauthorized(await svc.get('/api/scans/scan_abc'), 'read without key');
    expectUnauthorized(await svc.get('/api/queue'), 'queue without key');
    expect(await svc.service.queue.count()).toBe(0);

    const bearer = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/bearer' }, { authorization: `Bearer ${KEY_A}` });
    expect(bearer.status, bearer.body).toBe(202);
    const header = await svc.post('/api/scans', { url: 'http://127.0.0.1:9/header' }, { 'x-api-key': KEY_B });
    expect(header.status, header.body).toBe(202);
    const read = await svc.get(`/api/scans/${bearer.json.id}`, { 'x-api-key': KEY_A });
    expect(read.status, read.body).toBe(200);
  });

  it('health and metrics stay open without METRICS_TOKEN', async () => {
    for (const url of ['/health', '/health/live', '/health/ready', '/health/detailed', '/metrics']) {
      const res = await svc.get(url);
      expect(res.status, `${url}: ${res.body}`).toBe(200);
    }
  });

  it('METRICS_TOKEN protects /metrics only', async () => {
    const token = 'metrics-t0ken-83hf';
    const guarded = await service({ API_KEYS: KEY_A, METRICS_TOKEN: token });
    for (const headers of [{}, { authorization: 'Bearer nope' } as Record<string, string>, { authorization: `Bearer ${token}x` }, { authorization: `Bearer ${KEY_A}` }]) {
      const res = await guarded.get('/metrics', headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.body).not.toContain('wcagai_');
    }
    const ok = await guarded.get('/metrics', { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('wcagai_http_requests_total');
    expect((await guarded.get('/health')).status).toBe(200);
    expect((await guarded.get('/health/live')).status).toBe(200);
  });
});

describe('rate limit', () => {
  it('answers the 6th request of a window with 429 problem+json and Retry-After; health stays open', async () => {
    const svc = await service({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m' });
    for (let i = 1; i <= 5; i++) {
      const res = await svc.get('/api/scans/scan_none');
      expect(res.status, `request ${i}`).toBe(404);
      expect(res.headers['x-ratelimit-remaining']).toBe(String(5 - i));
    }
    const refused = await svc.get('/api/scans/scan_none');
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(refused.json).toMatchObject({ status: 429, code: 'RATE_LIMITED', type: 'urn:wcagai:problem:rate-limited', instance: '/api/scans/scan_none' });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await svc.post('/api/scans', { url: 'http://127.0.0.1:9/limited' })).status).toBe(429);
    expect(await svc.service.queue.count()).toBe(0);
    for (const url of ['/health', '/health/live', '/health/ready', '/metrics']) expect((await svc.get(url)).status, url).toBe(200);
  });

  it('shares the count between two server processes on the same Redis', async () => {
    const prefix = uniquePrefix('rl');
    const one = await service({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m' }, prefix);
    const two = await service({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m' }, prefix);
    const statuses: number[] = [];
    for (const svc of [one, two, one, two, one]) statuses.push((await svc.get('/api/scans/scan_none')).status);
    expect(statuses).toEqual([404, 404, 404, 404, 404]);
    const sixth = await two.get('/api/scans/scan_none');
    expect(sixth.status).toBe(429);
    expect(sixth.headers['retry-after']).toBeDefined();
    expect((await one.get('/api/scans/scan_none')).status).toBe(429);
  });

  it('gives each of many requests arriving together its own place in the count', async () => {
    const svc = await service({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m' });
    // Counted together (one INCRBY for the turn), answered one by one: five pass, three are refused.
    const answers = await Promise.all(Array.from({ length: 8 }, () => svc.get('/api/scans/scan_none')));
    expect(answers.map((a) => a.status).sort()).toEqual([404, 404, 404, 404, 404, 429, 429, 429]);
    const remaining = answers.filter((a) => a.status === 404).map((a) => Number(a.headers['x-ratelimit-remaining']));
    expect(remaining.sort()).toEqual([0, 1, 2, 3, 4]);
    const { redis: r, keys } = svc.service;
    const [counter] = await r.keys(`${keys.bullPrefix}:rl:*`);
    expect(Number(await r.get(counter!))).toBe(8);
    const ttl = await r.pttl(counter!);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('counts per client behind a trusted proxy (TRUST_PROXY), and ignores X-Forwarded-For from anyone else', async () => {
    // inject() connects from 127.0.0.1: the proxy here.
    const behind = await service({ RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m', TRUST_PROXY: '127.0.0.1, 10.0.0.0/8' });
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    expect((await behind.get('/api/scans/scan_none', from('203.0.113.7'))).status).toBe(404);
    expect((await behind.get('/api/scans/scan_none', from('203.0.113.7'))).status).toBe(404);
    expect((await behind.get('/api/scans/scan_none', from('203.0.113.7'))).status).toBe(429);
    expect((await behind.get('/api/scans/scan_none', from('203.0.113.8'))).status).toBe(404);
    // Not trusted (the default): a client cannot pick a fresh count by sending the header itself.
    const direct = await service({ RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW: '1m' });
    const statuses = [];
    for (const ip of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) statuses.push((await direct.get('/api/scans/scan_none', from(ip))).status);
    expect(statuses).toEqual([404, 404, 429]);
  });

  it('counts per API key when one is presented', async () => {
    const svc = await service({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '1m', API_KEYS: `${KEY_A},${KEY_B}` });
    for (let i = 0; i < 5; i++) expect((await svc.get('/api/scans/scan_none', { 'x-api-key': KEY_A })).status).toBe(404);
    expect((await svc.get('/api/scans/scan_none', { authorization: `Bearer ${KEY_A}` })).status).toBe(429);
    expect((await svc.get('/api/scans/scan_none', { 'x-api-key': KEY_B })).status).toBe(404);
  });

  it('counts a client by its IP when the key it sends is none of API_KEYS: a made-up key per request buys no fresh count', async () => {
    // API_KEYS unset: /api/* is open, and any X-API-Key or bearer value is the client's invention.
    const open = await service({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '1m' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const headers = i % 2 ? { 'x-api-key': `made-up-${i}` } : { authorization: `Bearer made-up-${i}` };
      statuses.push((await open.get('/api/scans/scan_none', headers)).status);
    }
    expect(statuses).toEqual([404, 404, 404, 429, 429]);
  });
});

/** A test service listening on a loopback port (the other tests here use inject). */
async function listening(settings: Record<string, string>): Promise<{ port: number; base: string; svc: TestService }> {
  const svc = await service(settings);
  const address = await svc.service.app!.listen({ port: 0, host: '127.0.0.1' });
  return { port: Number(new URL(address).port), base: address, svc };
}

/** A raw keep-alive connection: requests written by hand, answers read as they come, its close noted. */
async function rawConnection(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  let closedAt: number | null = null;
  socket.on('data', (d) => (received += d.toString('latin1')));
  socket.on('close', () => (closedAt = Date.now()));
  socket.on('error', () => undefined);
  return {
    /** Sends GET /health/live and resolves with its status line. */
    async get(): Promise<string> {
      received = '';
      socket.write('GET /health/live HTTP/1.1\r\nHost: wcagai.test\r\n\r\n');
      const until = Date.now() + 5_000;
      while (!/\r\n\r\n/.test(received) && closedAt === null && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      return received.split('\r\n')[0] ?? '';
    },
    closedAt: () => closedAt,
    destroy: () => socket.destroy(),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('keep-alive connections', () => {
  it('stay open while idle for HTTP_KEEP_ALIVE_TIMEOUT, past the 10 s headers timeout, and are closed by the server after it', async () => {
    const [long, short] = await Promise.all([listening({ HTTP_KEEP_ALIVE_TIMEOUT: '20s' }), listening({ HTTP_KEEP_ALIVE_TIMEOUT: '1s' })]);
    const a = await rawConnection(long.port);
    const b = await rawConnection(short.port);
    try {
      expect(await a.get()).toBe('HTTP/1.1 200 OK');
      const answered = Date.now();
      expect(await b.get()).toBe('HTTP/1.1 200 OK');
      const bAnswered = Date.now();
      // Idle longer than headersTimeout (10 s): an idle connection is not a slow request.
      await sleep(11_000);
      // The server with the short timeout closed its idle connection about a second after answering.
      expect(b.closedAt(), 'idle connection closed by the server').not.toBeNull();
      expect(b.closedAt()! - bAnswered).toBeGreaterThanOrEqual(900);
      expect(b.closedAt()! - bAnswered).toBeLessThan(4_000);
      // The same connection still serves a request after 11 s of silence.
      expect(a.closedAt()).toBeNull();
      expect(Date.now() - answered).toBeGreaterThan(10_000);
      expect(await a.get()).toBe('HTTP/1.1 200 OK');
    } finally {
      a.destroy();
      b.destroy();
    }
  }, 30_000);
});
