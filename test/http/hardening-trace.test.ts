import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { freePort } from '../support/net.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { createLogger } from '../../src/observability/logger.js';
import { baseEnv, LogSink, TEST_SETTINGS, uniquePrefix, waitFor } from '../support/service.js';

const BIN = fileURLToPath(new URL('../../bin/wcagai', import.meta.url));
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SECRETS = { bearer: 'sekritBearer7Q2vX9', cookie: 'sekritCookie4Lm8Zp', apiKey: 'sekritApiKey3Rt6Wd' };

interface Child {
  proc: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnCli(args: string[], env: Record<string, string | undefined>): Child {
  const proc = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-200_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, pid: proc.pid!, output: () => output, exited };
}

async function stopChild(child: Child | undefined): Promise<void> {
  if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 10_000);
  await child.exited;
  clearTimeout(timer);
}

type Line = Record<string, unknown> & { raw: string };

let redis: RedisServer;
let fixture: FixtureServer;
let ai: FakeUpstream;
let dir: string;
let logFile: string;
let serve: Child;
let worker: Child;
let base: string;

function logLines(): Line[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((raw) => ({ ...(JSON.parse(raw) as Record<string, unknown>), raw }));
}

beforeAll(async () => {
  [redis, fixture, ai] = await Promise.all([startRedisServer(), startFixtureServer(), startFakeUpstream()]);
  // One violation (an image without alt), so the worker asks the AI stand-in for a fix.
  fixture.html('/traced.html', page('<h1>Traced</h1><img src="/pixel.png">'));
  ai.on('/v1/chat/completions', () => ({ json: { choices: [{ message: { content: JSON.stringify({ suggestions: [{ rule: 'image-alt', fix: 'Give the image an alt text.' }] }) } }] } }));
  dir = mkdtempSync(join(tmpdir(), 'wcagai-trace-'));
  // The app creates logs/ itself.
  logFile = join(dir, 'logs', 'combined.log');
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    ...baseEnv(),
    ...TEST_SETTINGS,
    ALLOW_PRIVATE_TARGETS: 'true',
    REDIS_URL: redis.url,
    QUEUE_PREFIX: uniquePrefix('trace'),
    PORT: String(port),
    LOG_FILE: logFile,
    WORKER_CONCURRENCY: '1',
    AI_ENABLED: 'true',
    AI_BASE_URL: ai.url('/v1'),
    AI_API_KEY: 'sk-trace-0123456789',
    AI_ATTEMPTS: '1',
  };
  serve = spawnCli(['serve', '--no-worker'], env);
  worker = spawnCli(['worker'], env);
  await waitFor(async () => (await fetch(`${base}/health/live`)).ok, { timeoutMs: 30_000, intervalMs: 100, what: `serve to listen:\n${serve.output()}` });
  // The worker is ready once its browser is warm and it has said so.
  await waitFor(() => logLines().some((l) => l.event === 'worker.start' && l.pid === worker.pid), { timeoutMs: 45_000, intervalMs: 200, what: `the worker to start:\n${worker.output()}` });
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([stopChild(serve), stopChild(worker)]);
  await redis?.close();
  await fixture?.close();
  await ai?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('correlation ids across serve and worker processes', () => {
  it('one grep for the request id shows the request, the queue add, the worker start, its browser events, its external call and the completion, from both processes', async () => {
    const res = await fetch(`${base}/api/scan`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'test123', prefer: 'wait=30', traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ url: fixture.url('/traced.html') }),
    });
    const body = (await res.json()) as Record<string, any>;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('test123');
    expect(body).toMatchObject({ status: 'completed', requestId: 'test123' });
    const jobId = String(body.id);

    // Both processes write asynchronously: wait for the last lines of each to reach the file.
    const lines = await waitFor(
      () => {
        const all = logLines().filter((l) => l.raw.includes('test123'));
        const done = all.some((l) => l.event === 'scan.completed') && all.some((l) => l.msg === 'request completed');
        return done ? all : undefined;
      },
      { timeoutMs: 10_000, what: 'the trace lines to be flushed' },
    );
    // A grep for the id finds only lines that carry it as requestId, each key written once.
    for (const l of lines) {
      expect(l.requestId, l.raw).toBe('test123');
      expect(l.raw.match(/"requestId":/g), l.raw).toHaveLength(1);
      expect(l.raw.match(/"jobId":/g)?.length ?? 0, l.raw).toBeLessThanOrEqual(1);
    }
    const find = (what: string, pred: (l: Line) => boolean) => {
      const hit = lines.find(pred);
      expect(hit, `${what} in:\n${lines.map((l) => l.raw).join('\n')}`).toBeDefined();
      return hit!;
    };
    const incoming = find('incoming request', (l) => l.msg === 'incoming request');
    // The incoming line is written before any hook: it takes the trace id from the header itself.
    expect(incoming).toMatchObject({ pid: serve.pid, traceId: TRACE_ID, req: { method: 'POST', url: '/api/scan' } });
    const queued = find('queue add', (l) => l.event === 'scan.queued');
    expect(queued).toMatchObject({ pid: serve.pid, jobId, traceId: TRACE_ID });
    const start = find('worker start', (l) => l.event === 'scan.start');
    // The trace id travels in the job: the worker's lines carry it as the API's do.
    expect(start).toMatchObject({ pid: worker.pid, jobId, traceId: TRACE_ID, url: fixture.url('/traced.html') });
    const navigated = find('browser navigation', (l) => l.event === 'browser.navigated');
    expect(navigated).toMatchObject({ pid: worker.pid, jobId, traceId: TRACE_ID, url: fixture.url('/traced.html'), httpStatus: 200 });
    const analyzed = find('axe-core run', (l) => l.event === 'browser.analyzed');
    expect(analyzed).toMatchObject({ pid: worker.pid, jobId, violations: 1 });
    const external = find('external call', (l) => l.event === 'upstream.call');
    expect(external).toMatchObject({ pid: worker.pid, jobId, service: 'ai', attempts: 1 });
    // The call itself carried the id to the service.
    const calls = ai.requestsTo('/v1/chat/completions');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers['x-request-id']).toBe('test123');
    const completed = find('completion', (l) => l.event === 'scan.completed');
    expect(completed).toMatchObject({ pid: worker.pid, jobId, traceId: TRACE_ID });
    for (const l of lines) expect(l.raw.match(/"traceId":/g)?.length ?? 0, l.raw).toBeLessThanOrEqual(1);
    const answered = find('response', (l) => l.msg === 'request completed');
    expect(answered).toMatchObject({ pid: serve.pid, traceId: TRACE_ID, res: { statusCode: 200 } });
    expect(new Set(lines.map((l) => l.pid))).toEqual(new Set([serve.pid, worker.pid]));
    // In order: arrival before queue add and worker start, completion before the answer.
    const at = (l: Line) => Date.parse(String(l.time));
    expect(at(incoming)).toBeLessThanOrEqual(at(queued));
    // `scan.queued` is written once the add has returned: a worker may already have started the job.
    expect(at(incoming)).toBeLessThanOrEqual(at(start));
    expect(at(queued)).toBeLessThanOrEqual(at(answered));
    expect(at(start)).toBeLessThanOrEqual(at(navigated));
    expect(at(navigated)).toBeLessThanOrEqual(at(analyzed));
    expect(at(analyzed)).toBeLessThanOrEqual(at(external));
    expect(at(external)).toBeLessThanOrEqual(at(completed));
    expect(at(completed)).toBeLessThanOrEqual(at(answered));
  });

  it('keeps a well-formed X-Request-ID (up to 128 characters) and replaces any other with req_…', async () => {
    const longest = `a.b:c-d_${'x'.repeat(120)}`;
    expect(longest).toHaveLength(128);
    const kept = await fetch(`${base}/health/live`, { headers: { 'x-request-id': longest } });
    expect(kept.headers.get('x-request-id')).toBe(longest);

    const invalid = ['y'.repeat(129), 'z'.repeat(200), 'has spaces in it', 'semi;colon', 'quote"d', 'ünïcode', '<script>'];
    const given = new Set<string>();
    for (const id of invalid) {
      for (const url of ['/health/live', '/api/nothing']) {
        const res = await fetch(`${base}${url}`, { headers: { 'x-request-id': id } });
        const echoed = res.headers.get('x-request-id')!;
        expect(echoed, id).toMatch(/^req_[A-Za-z0-9_-]{8,}$/);
        expect(given.has(echoed)).toBe(false);
        given.add(echoed);
        if (res.status === 404) expect(((await res.json()) as { requestId: string }).requestId).toBe(echoed);
      }
    }
    const logged = await waitFor(() => {
      const lines = logLines().filter((l) => given.has(String(l.requestId)));
      return lines.length >= given.size ? lines : undefined;
    });
    for (const l of logged) for (const id of invalid) expect(l.raw).not.toContain(`"requestId":${JSON.stringify(id)}`);
  });

  it('takes the trace id of a valid traceparent only (W3C Trace Context)', async () => {
    const cases: Array<[string, string | undefined]> = [
      [`00-${TRACE_ID}-00f067aa0ba902b7-01`, TRACE_ID],
      [`00-${TRACE_ID.toUpperCase()}-00f067aa0ba902b7-01`, undefined],
      [`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, undefined],
      [`00-${TRACE_ID}-${'0'.repeat(16)}-01`, undefined],
      [`ff-${TRACE_ID}-00f067aa0ba902b7-01`, undefined],
      [`00-${TRACE_ID}-00f067aa0ba902b7-01-more`, undefined],
      [`01-${TRACE_ID}-00f067aa0ba902b7-01-more`, TRACE_ID],
      [`00-${TRACE_ID}-zzzz-01`, undefined],
      ['garbage', undefined],
    ];
    for (const [i, [traceparent]] of cases.entries()) {
      const res = await fetch(`${base}/api/nothing`, { headers: { traceparent, 'x-request-id': `tp-${i}` } });
      expect(res.status).toBe(404);
    }
    const lines = await waitFor(() => {
      const mine = logLines().filter((l) => String(l.requestId).startsWith('tp-') && l.msg === 'request completed');
      return mine.length >= cases.length ? mine : undefined;
    });
    for (const [i, [, expected]] of cases.entries()) {
      const line = lines.find((l) => l.requestId === `tp-${i}`)!;
      if (expected) expect(line.traceId).toBe(expected);
      else expect(line).not.toHaveProperty('traceId');
    }
  });

  it('masks a token in the scanned URL on every line of both processes, failures included, while the result keeps the URL', async () => {
    const secret = 'pageTok3nQ8vZ';
    const scan = async (url: string, requestId: string) => {
      const res = await fetch(`${base}/api/scan`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId, prefer: 'wait=30' },
        body: JSON.stringify({ url }),
      });
      const body = (await res.json()) as Record<string, any>;
      expect(res.status, JSON.stringify(body)).toBe(200);
      return body;
    };
    const target = fixture.url(`/traced.html?token=${secret}&page=2`);
    const done = await scan(target, 'masked-ok');
    expect(done).toMatchObject({ status: 'completed', url: target, result: { url: target } });
    // Nothing listens there: the browser's error quotes the URL (net::ERR_CONNECTION_REFUSED at …).
    const refused = `http://127.0.0.1:${await freePort()}/?token=${secret}`;
    const failed = await scan(refused, 'masked-failed');
    expect(failed).toMatchObject({ status: 'failed', url: refused });

    const lines = await waitFor(
      () => {
        const all = logLines().filter((l) => String(l.requestId).startsWith('masked-') || l.jobId === failed.id);
        const finished = all.some((l) => l.event === 'scan.completed') && all.some((l) => l.event === 'scan.failed' && l.final === true);
        const captured = all.some((l) => l.event === 'dlq.captured');
        return finished && captured && all.filter((l) => l.msg === 'request completed').length === 2 ? all : undefined;
      },
      { timeoutMs: 10_000, what: 'the lines of both scans to be flushed' },
    );
    const masked = fixture.url('/traced.html?token=[redacted]&page=2');
    const of = (event: string, requestId = 'masked-ok') => {
      const hit = lines.find((l) => l.event === event && (event === 'dlq.captured' || l.requestId === requestId));
      expect(hit, `${event} in:\n${lines.map((l) => l.raw).join('\n')}`).toBeDefined();
      return hit!;
    };
    for (const event of ['scan.queued', 'scan.start', 'browser.navigated', 'browser.analyzed', 'scan.completed']) expect(of(event).url, event).toBe(masked);
    expect(of('browser.navigated').finalUrl).toBe(masked);
    const maskedRefused = refused.replace(secret, '[redacted]');
    expect(of('scan.failed', 'masked-failed')).toMatchObject({ url: maskedRefused, msg: expect.stringContaining(maskedRefused) });
    expect(of('dlq.captured')).toMatchObject({ jobId: failed.id, url: maskedRefused });
    for (const l of lines) expect(l.raw, l.raw).not.toContain(secret);
    expect(readFileSync(logFile, 'utf8')).not.toContain(secret);
  });

  it('echoes X-Request-ID on every answer, errors and 405 included', async () => {
    for (const [method, url] of [
      ['GET', '/health'],
      ['DELETE', '/api/scans'],
      ['GET', '/missing'],
      ['POST', '/admin/queue/pause'],
    ] as const) {
      const res = await fetch(`${base}${url}`, { method, headers: { 'x-request-id': `echo-${method}-${url.length}` } });
      expect(res.headers.get('x-request-id'), `${method} ${url}`).toBe(`echo-${method}-${url.length}`);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('never writes authorization, cookies or API keys to the log file', async () => {
    const headers = { authorization: `Bearer ${SECRETS.bearer}`, cookie: `session=${SECRETS.cookie}`, 'x-api-key': SECRETS.apiKey, 'x-request-id': 'redact-1' };
    const requests: Array<[string, string, string?]> = [
      ['GET', '/health'],
      ['GET', '/nowhere'],
      ['POST', '/api/scans', JSON.stringify({ url: 5 })],
      ['POST', '/api/scans', '{"url": '],
      ['POST', '/admin/queue/pause'],
      ['DELETE', '/api/scans'],
    ];
    for (const [method, url, body] of requests) {
      await fetch(`${base}${url}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body } : {}) });
    }
    const lines = await waitFor(() => {
      const mine = logLines().filter((l) => l.requestId === 'redact-1');
      return mine.filter((l) => l.msg === 'request completed').length >= requests.length ? mine : undefined;
    });
    expect(lines.length).toBeGreaterThanOrEqual(requests.length * 2);
    const text = readFileSync(logFile, 'utf8');
    for (const secret of Object.values(SECRETS)) {
      expect(text.includes(secret), `${secret} in the log file`).toBe(false);
      expect(serve.output().includes(secret), `${secret} on stdout`).toBe(false);
    }
  });
});

describe('log redaction', () => {
  it('censors credentials wherever headers or settings are logged', () => {
    const sink = new LogSink();
    const logger = createLogger({ level: 'info', destination: sink });
    const headers = { authorization: `Bearer ${SECRETS.bearer}`, cookie: `s=${SECRETS.cookie}`, 'x-api-key': SECRETS.apiKey, accept: 'application/json' };
    logger.info({ req: { method: 'GET', url: '/x', headers } }, 'request with headers');
    logger.info({ headers }, 'outgoing call');
    logger.info({ res: { headers: { 'set-cookie': `s=${SECRETS.cookie}` } } }, 'response');
    logger.info({ config: { ADMIN_TOKEN: SECRETS.bearer, API_KEYS: [SECRETS.apiKey], PORT: 8080 } }, 'settings');
    logger.info({ client: { token: SECRETS.bearer, apiKey: SECRETS.apiKey } }, 'client');
    // Child loggers' bindings, at any generation (pino formats them without formatters.bindings).
    const child = logger.child({ client: { token: SECRETS.bearer }, authorization: `Bearer ${SECRETS.bearer}` });
    child.info('child');
    child.child({ cookie: `s=${SECRETS.cookie}` }, { level: 'info' }).info({ headers: { 'x-api-key': SECRETS.apiKey } }, 'grandchild');
    logger.flush();
    const text = JSON.stringify(sink.entries);
    for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    expect(sink.entries[0]).toMatchObject({ req: { headers: { authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', accept: 'application/json' } } });
    expect(sink.entries[3]).toMatchObject({ config: { PORT: 8080 } });
    expect(sink.entries[5]).toMatchObject({ msg: 'child', client: { token: '[redacted]' }, authorization: '[redacted]' });
    expect(sink.entries[6]).toMatchObject({ msg: 'grandchild', cookie: '[redacted]', headers: { 'x-api-key': '[redacted]' } });
  });
});
