import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { callUpstream, parseRetryAfter, UpstreamError } from '../../src/clients/http.js';
import { DEFAULT_POLICY, ServicePolicy, type PolicySettings } from '../../src/clients/policies.js';
import { BreakerRegistry, type BreakerChange } from '../../src/clients/registry.js';
import { HubSpotClient } from '../../src/clients/hubspot.js';
import { SlackNotifier } from '../../src/clients/slack.js';
import { runWithContext } from '../../src/observability/context.js';
import { createLogger } from '../../src/observability/logger.js';
import { fakeUpstreamForFile, startFakeUpstream } from '../support/fake-upstream.js';
import { freePort } from '../support/net.js';
import { LogSink, waitFor } from '../support/service.js';

const SECRET = 'sk-live-0123456789abcdef';
const okSchema = z.object({ ok: z.literal(true) });

const fake = fakeUpstreamForFile();

function policy(settings: Partial<PolicySettings> = {}, name = 'ai'): ServicePolicy {
  return new ServicePolicy(name, { ...DEFAULT_POLICY, backoffMs: 20, timeoutMs: 2_000, ...settings });
}

/** One call through `p` to `path` on the fake, as the clients make it (an idempotent POST, as a search or completion is). */
function call(p: ServicePolicy, path: string, signal?: AbortSignal) {
  return p.execute(
    (s) => callUpstream({ service: p.name, method: 'POST', url: fake.url(path), headers: { authorization: `Bearer ${SECRET}` }, body: { q: 1 }, schema: okSchema, signal: s, secrets: [SECRET], idempotent: true }),
    signal,
  );
}

async function failure(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(UpstreamError);
    return err as UpstreamError;
  }
  throw new Error('expected the call to fail');
}

describe('callUpstream and redirects', () => {
  it('does not follow a redirect: the key header and the body never reach the other host, and the answer says where it pointed', async () => {
    const other = await startFakeUpstream();
    try {
      other.on('/elsewhere', () => ({ json: { ok: true } }));
      fake.on('/moved', () => ({ status: 307, headers: { location: other.url('/elsewhere') } }));
      const p = policy({ attempts: 3 });
      const err = await failure(
        p.execute((s) => callUpstream({ service: 'apollo', method: 'POST', url: fake.url('/moved'), headers: { 'x-api-key': SECRET }, body: { routing_key: SECRET }, schema: okSchema, signal: s, secrets: [SECRET], idempotent: true })),
      );
      expect(err.code).toBe('UPSTREAM_REJECTED');
      expect(err.httpStatus).toBe(307);
      expect(err.message).toContain(`a redirect to ${other.origin}, not followed`);
      expect(err.message).not.toContain(SECRET);
      expect(other.requests).toHaveLength(0);
      // Neither retried nor held against the breaker.
      expect(fake.requestsTo('/moved')).toHaveLength(1);
      expect(p.breaker.snapshot()).toMatchObject({ state: 'CLOSED', failures: 0 });
    } finally {
      await other.close();
    }
  });
});

describe('resilience policy (real HTTP on loopback)', () => {
  it('writes one line per call with its outcome, attempts and the request id of the caller', async () => {
    const sink = new LogSink();
    const logger = createLogger({ level: 'info', destination: sink });
    const p = new ServicePolicy('ai', { ...DEFAULT_POLICY, backoffMs: 20, timeoutMs: 2_000, attempts: 2 }, logger);
    let n = 0;
    fake.on('/logged', () => (++n === 1 ? { status: 503, text: 'busy' } : { json: { ok: true } }));
    fake.on('/logged-down', () => ({ status: 500, text: 'down' }));
    await runWithContext({ requestId: 'log-req-1', jobId: 'scan_log1' }, () => call(p, '/logged'));
    await runWithContext({ requestId: 'log-req-2' }, () => failure(call(p, '/logged-down')));
    logger.flush();
    const [ok] = sink.events('upstream.call');
    expect(ok).toMatchObject({ service: 'ai', attempts: 2, requestId: 'log-req-1', jobId: 'scan_log1', level: 30 });
    expect(ok!.ms).toBeGreaterThanOrEqual(0);
    const [failed] = sink.events('upstream.failed');
    expect(failed).toMatchObject({ service: 'ai', code: 'UPSTREAM_UNAVAILABLE', attempts: 2, requestId: 'log-req-2', level: 40 });
    // The line names the call's failure; the secret the call carried is nowhere.
    expect(String(failed!.msg)).toContain('answered 500');
    expect(JSON.stringify(sink.entries)).not.toContain(SECRET);
  });

  it('honours Retry-After on 429: the retry waits the delay the service asked for', async () => {
    let n = 0;
    fake.on('/rate', () => (++n === 1 ? { status: 429, headers: { 'retry-after': '1' }, json: { error: 'slow down' } } : { json: { ok: true } }));
    const answer = await call(policy({ attempts: 3 }), '/rate');
    expect(answer.value).toEqual({ ok: true });
    const [first, second] = fake.requestsTo('/rate');
    const waited = second!.at - first!.at;
    // Retry-After 1 s, plus at most 10 % jitter; the exponential backoff alone would be ~20 ms.
    expect(waited).toBeGreaterThanOrEqual(990);
    expect(waited).toBeLessThan(2_000);
  });

  it('does not wait for a Retry-After longer than its longest backoff: fails at once with UPSTREAM_RATE_LIMITED', async () => {
    fake.on('/rate-long', () => ({ status: 429, headers: { 'retry-after': '120' }, text: 'quota' }));
    const err = await failure(call(policy({ attempts: 3, maxBackoffMs: 5_000 }), '/rate-long'));
    expect(err.code).toBe('UPSTREAM_RATE_LIMITED');
    expect(err.retryAfterMs).toBe(120_000);
    expect(fake.requestsTo('/rate-long')).toHaveLength(1);
  });

  it('retries 5xx a bounded number of times with growing, jittered delays', async () => {
    fake.on('/down', () => ({ status: 503, text: 'maintenance' }));
    const p = policy({ attempts: 4, backoffMs: 40, breakerFailures: 100 });
    const delays: number[] = [];
    p.onRetry((e) => delays.push(e.delayMs));
    const err = await failure(call(p, '/down'));
    expect(err.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(err.httpStatus).toBe(503);
    expect(err.message).toContain('answered 503: maintenance');
    expect(fake.requestsTo('/down')).toHaveLength(4);
    // Equal jitter: retry n waits between half and all of 40 * 2^(n-1) ms.
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(20 * 2 ** i);
      expect(d).toBeLessThanOrEqual(40 * 2 ** i);
    });
  });

  it('retries a 408 like a 5xx and counts it towards the breaker like one', async () => {
    fake.on('/request-timeout', () => ({ status: 408, headers: { connection: 'close' }, text: 'request timeout' }));
    const p = policy({ attempts: 3, backoffMs: 10, breakerFailures: 3 });
    const err = await failure(call(p, '/request-timeout'));
    expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', httpStatus: 408, transient: true, breakerFailure: true });
    expect(fake.requestsTo('/request-timeout')).toHaveLength(3);
    expect(p.breaker.snapshot()).toMatchObject({ state: 'OPEN', failures: 3 });
  });

  it('retries network errors (a connection dropped without an answer, a port nobody listens on)', async () => {
    // Drops the first two connections without answering, then answers.
    let connections = 0;
    const flaky = createServer((req, res) => {
      connections++;
      if (connections <= 2) return void req.socket.destroy();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/flaky`;
      const p = policy({ attempts: 3, breakerFailures: 100 });
      const retries: string[] = [];
      p.onRetry((e) => retries.push(e.error instanceof UpstreamError ? e.error.code : 'unknown'));
      const answer = await p.execute((s) => callUpstream({ service: p.name, method: 'POST', url, body: { q: 1 }, schema: okSchema, signal: s, idempotent: true }));
      expect(answer).toMatchObject({ status: 200, value: { ok: true } });
      expect(connections).toBe(3);
      expect(retries).toEqual(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE']);
    } finally {
      await new Promise<void>((resolve) => flaky.close(() => resolve()));
    }

    // Nothing listens: refused every time, retried until the attempts are spent.
    const port = await freePort();
    const p = policy({ attempts: 2, breakerFailures: 100 });
    let retried = 0;
    p.onRetry(() => retried++);
    const err = await failure(p.execute((s) => callUpstream({ service: p.name, method: 'POST', url: `http://127.0.0.1:${port}/`, body: {}, schema: okSchema, signal: s })));
    expect(err.transient).toBe(true);
    expect(retried).toBe(1);
  });

  it('retries a non-idempotent POST (HubSpot note, Slack message) only when it provably did not take effect', async () => {
    // Each path answers its first request with `first`, then normally.
    let notes = 0;
    let messages = 0;
    let first: 'bad-gateway' | 'drop-after-read' | 'unavailable-retry-after' | 'rate-limited' | 'request-timeout' = 'bad-gateway';
    const fail = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): boolean => {
      if (first === 'bad-gateway') res.writeHead(502).end('bad gateway');
      else if (first === 'drop-after-read') req.socket.destroy();
      else if (first === 'unavailable-retry-after') res.writeHead(503, { 'retry-after': '0' }).end('busy');
      else if (first === 'request-timeout') res.writeHead(408, { connection: 'close' }).end();
      else res.writeHead(429, { 'retry-after': '0' }).end('slow down');
      return true;
    };
    const upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/crm/v3/objects/notes') {
          if (++notes === 1 && fail(req, res)) return;
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `note-${notes}` }));
        } else if (req.url === '/hook') {
          if (++messages === 1 && fail(req, res)) return;
          res.end('ok');
        } else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const alert = { id: 'queue_depth', rule: 'QUEUE_DEPTH' as const, severity: 'critical' as const, summary: 's', value: 1, threshold: 1, details: {} };
    try {
      const hubspot = new HubSpotClient(policy({ attempts: 3, breakerFailures: 100 }, 'hubspot'), { baseUrl: base, token: 'hs-token-0123456789' });
      const slackNotifier = new SlackNotifier(policy({ attempts: 3, breakerFailures: 100 }, 'slack'), `${base}/hook`);
      const round = async (how: typeof first) => {
        [notes, messages, first] = [0, 0, how];
        const note = await hubspot.addCompanyNote('42', '<p>x</p>').catch((e: unknown) => e);
        const sent = await slackNotifier.send(alert, 'trigger', { source: 't' }).catch((e: unknown) => e);
        return { note, sent, notes, messages };
      };
      // A 502 or a connection cut after the request was read: it may have been processed. Not tried again.
      for (const how of ['bad-gateway', 'drop-after-read'] as const) {
        const r = await round(how);
        expect(r.note).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', transient: false });
        expect(r.sent).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', transient: false });
        expect([r.notes, r.messages]).toEqual([1, 1]);
      }
      // 503 with Retry-After, 429 or 408: the service says it did not process it. Tried again.
      for (const how of ['unavailable-retry-after', 'rate-limited', 'request-timeout'] as const) {
        const r = await round(how);
        expect(r.note).toBe('note-2');
        expect(r.sent).toMatchObject({ status: 200 });
        expect([r.notes, r.messages]).toEqual([2, 2]);
      }
    } finally {
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
    // Nothing listens: the connection is refused, so the request never left. Tried again.
    const port = await freePort();
    const p = policy({ attempts: 2, breakerFailures: 100 }, 'slack');
    let retried = 0;
    p.onRetry(() => retried++);
    const refused = await new SlackNotifier(p, `http://127.0.0.1:${port}/hook`).send(alert, 'trigger', { source: 't' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', transient: true });
    expect(retried).toBe(1);
  });

  it('neither retries nor counts a 4xx refusal, and never shows a secret the service echoes back', async () => {
    fake.on('/refuse', (req) => ({ status: 401, json: { error: `invalid key ${String(req.headers.authorization)}` } }));
    const p = policy({ attempts: 3 });
    const err = await failure(call(p, '/refuse'));
    expect(err.code).toBe('UPSTREAM_REJECTED');
    expect(err.message).toContain('answered 401');
    expect(err.message).not.toContain(SECRET);
    expect(err.message).toContain('[redacted]');
    expect(fake.requestsTo('/refuse')).toHaveLength(1);
    expect(p.breaker.snapshot().failures).toBe(0);
  });

  it('quotes an answer without its control characters: the message reaches terminals (top, logs)', async () => {
    fake.on('/escape', () => ({ status: 422, text: '\u001b]0;PWNED\u0007\u001b[2Jbad\u0000 input' }));
    const err = await failure(call(policy({ attempts: 1 }), '/escape'));
    expect(err.message).toMatch(/ answered 422: \]0;PWNED\[2Jbad input$/);
    expect(err.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('enforces the timeout of an attempt', async () => {
    fake.on('/hang', () => ({ hang: true }));
    const started = performance.now();
    const err = await failure(call(policy({ attempts: 1, timeoutMs: 300 }), '/hang'));
    const ms = performance.now() - started;
    expect(err.code).toBe('UPSTREAM_TIMEOUT');
    expect(err.message).toBe('ai: no answer within 300 ms');
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(1_500);
  });

  it('turns an answer of the wrong shape into UPSTREAM_INVALID_RESPONSE naming the field, and forwards X-Request-ID', async () => {
    fake.on('/odd', () => ({ json: { ok: 'yes' } }));
    const err = await failure(runWithContext({ requestId: 'req-odd-1' }, () => call(policy({ attempts: 3 }), '/odd')));
    expect(err.code).toBe('UPSTREAM_INVALID_RESPONSE');
    expect(err.message).toMatch(/unexpected body \(ok: /);
    const sent = fake.requestsTo('/odd');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers['x-request-id']).toBe('req-odd-1');
    expect(sent[0]!.headers['user-agent']).toMatch(/^wcagai\//);
  });

  it('opens the breaker after the configured consecutive failures, fails fast while open, half-opens and closes when the service recovers', async () => {
    let healthy = false;
    fake.on('/flaky', () => (healthy ? { json: { ok: true } } : { status: 500, text: 'boom' }));
    const p = policy({ attempts: 1, breakerFailures: 3, halfOpenAfterMs: 400 });
    const registry = new BreakerRegistry();
    registry.add(p.breaker);
    const changes: BreakerChange[] = [];
    registry.onChange((c) => changes.push(c));

    for (let i = 0; i < 3; i++) expect((await failure(call(p, '/flaky'))).code).toBe('UPSTREAM_UNAVAILABLE');
    const open = registry.snapshot().ai!;
    expect(open).toMatchObject({ state: 'OPEN', failures: 3 });
    expect(open.lastFailure).toMatch(/^UPSTREAM_UNAVAILABLE: ai: POST .* answered 500: boom$/);
    expect(Date.parse(open.openedAt!)).not.toBeNaN();
    expect(registry.healthy()).toBe(false);

    const fast = await failure(call(p, '/flaky'));
    expect(fast.code).toBe('CIRCUIT_OPEN');
    expect(fast.message).toMatch(/circuit breaker open after 3 consecutive failures/);
    expect(fake.requestsTo('/flaky')).toHaveLength(3);

    healthy = true;
    await new Promise((r) => setTimeout(r, 450));
    expect((await call(p, '/flaky')).value).toEqual({ ok: true });
    expect(registry.snapshot().ai).toMatchObject({ state: 'CLOSED', failures: 0, openedAt: null });
    expect(changes.map((c) => `${c.from}>${c.to}`)).toEqual(['CLOSED>OPEN', 'OPEN>HALF_OPEN', 'HALF_OPEN>CLOSED']);
  });

  it('a half-open trial that fails opens the breaker again', async () => {
    fake.on('/still-down', () => ({ status: 502, text: 'bad gateway' }));
    const p = policy({ attempts: 1, breakerFailures: 1, halfOpenAfterMs: 150 });
    await failure(call(p, '/still-down'));
    expect(p.breaker.snapshot().state).toBe('OPEN');
    await new Promise((r) => setTimeout(r, 200));
    expect((await failure(call(p, '/still-down'))).code).toBe('UPSTREAM_UNAVAILABLE');
    expect(p.breaker.snapshot().state).toBe('OPEN');
    expect(fake.requestsTo('/still-down')).toHaveLength(2);
  });

  it('a half-open trial the caller cancels keeps the breaker open: the next call fails fast without reaching the service', async () => {
    fake.on('/trial-cancel', () => ({ status: 503, text: 'down' }));
    const p = policy({ attempts: 1, breakerFailures: 2, halfOpenAfterMs: 150, timeoutMs: 5_000 });
    for (let i = 0; i < 2; i++) await failure(call(p, '/trial-cancel'));
    expect(p.breaker.snapshot().state).toBe('OPEN');
    await new Promise((r) => setTimeout(r, 200));
    fake.on('/trial-cancel', () => ({ hang: true }));
    const controller = new AbortController();
    const trial = failure(call(p, '/trial-cancel', controller.signal));
    await waitFor(() => fake.requestsTo('/trial-cancel').length === 3, { timeoutMs: 5_000, what: 'the trial call to reach the service' });
    expect(p.breaker.snapshot().state).toBe('HALF_OPEN');
    controller.abort();
    expect((await trial).code).toBe('UPSTREAM_TIMEOUT');
    expect(p.breaker.snapshot().state).toBe('OPEN');
    fake.on('/trial-cancel', () => ({ status: 503, text: 'down' }));
    expect((await failure(call(p, '/trial-cancel'))).code).toBe('CIRCUIT_OPEN');
    expect(fake.requestsTo('/trial-cancel')).toHaveLength(3);
  });

  it('an operator reset is not undone by a half-open trial that started before it and fails after it', async () => {
    fake.on('/stale-trial', () => ({ status: 503, text: 'down' }));
    const p = policy({ attempts: 1, breakerFailures: 3, halfOpenAfterMs: 150, timeoutMs: 5_000 });
    for (let i = 0; i < 3; i++) await failure(call(p, '/stale-trial'));
    await new Promise((r) => setTimeout(r, 200));
    // The trial waits for an answer; the operator resets the breaker meanwhile; then the trial fails.
    let answer: (a: { status: number; text: string }) => void = () => undefined;
    fake.on('/stale-trial', () => new Promise((resolve) => (answer = resolve)));
    const trial = failure(call(p, '/stale-trial'));
    await waitFor(() => fake.requestsTo('/stale-trial').length === 4, { timeoutMs: 5_000, what: 'the trial call to reach the service' });
    expect(p.breaker.snapshot().state).toBe('HALF_OPEN');
    p.breaker.reset();
    expect(p.breaker.snapshot()).toMatchObject({ state: 'CLOSED', failures: 0 });
    answer({ status: 503, text: 'still down' });
    expect((await trial).code).toBe('UPSTREAM_UNAVAILABLE');
    expect(p.breaker.snapshot()).toMatchObject({ state: 'CLOSED', failures: 0 });
    // Failures of calls made after the reset count as usual.
    fake.on('/stale-trial', () => ({ status: 503, text: 'down' }));
    await failure(call(p, '/stale-trial'));
    expect(p.breaker.snapshot()).toMatchObject({ state: 'CLOSED', failures: 1 });
  });

  it('reset closes an open breaker; isolate holds it open until reset', async () => {
    fake.on('/ok', () => ({ json: { ok: true } }));
    fake.on('/err', () => ({ status: 500 }));
    const p = policy({ attempts: 1, breakerFailures: 1, halfOpenAfterMs: 60_000 });
    const registry = new BreakerRegistry();
    registry.add(p.breaker);
    const changes: string[] = [];
    registry.onChange((c) => changes.push(`${c.from}>${c.to}:${c.cause}`));
    await failure(call(p, '/err'));
    expect(registry.reset('ai')).toMatchObject({ state: 'CLOSED', failures: 0, openedAt: null });
    expect((await call(p, '/ok')).value).toEqual({ ok: true });

    expect(registry.isolate('ai').state).toBe('ISOLATED');
    const held = await failure(call(p, '/ok'));
    expect(held.code).toBe('CIRCUIT_OPEN');
    expect(held.message).toMatch(/isolated by an operator/);
    expect(registry.reset('ai').state).toBe('CLOSED');
    expect((await call(p, '/ok')).value).toEqual({ ok: true });
    expect(changes).toEqual(['CLOSED>OPEN:call', 'OPEN>CLOSED:reset', 'CLOSED>ISOLATED:isolate', 'ISOLATED>CLOSED:reset']);
    expect(() => registry.reset('nope')).toThrow(/no circuit breaker named "nope"; known: ai/);
  });

  it('limits concurrent calls with the bulkhead', async () => {
    fake.on('/slow', () => ({ json: { ok: true }, delayMs: 200 }));
    const p = policy({ concurrency: 1, queue: 0 });
    const [first, second] = await Promise.allSettled([call(p, '/slow'), call(p, '/slow')]);
    expect(first.status).toBe('fulfilled');
    expect(second.status).toBe('rejected');
    expect((second as PromiseRejectedResult).reason).toMatchObject({ code: 'UPSTREAM_RATE_LIMITED' });
  });

  it('forwards the X-Request-ID of its own caller for a call that waited in the bulkhead queue', async () => {
    fake.on('/queued', (req) => ({ json: { ok: true, id: req.body?.id }, delayMs: 100 }));
    const p = policy({ concurrency: 1, queue: 10 });
    const ids = ['req-q-A', 'req-q-B', 'req-q-C', 'req-q-D'];
    await Promise.all(
      ids.map((id) =>
        runWithContext({ requestId: id }, () =>
          p.execute((s) => callUpstream({ service: p.name, method: 'POST', url: fake.url('/queued'), body: { id }, schema: z.object({ ok: z.literal(true) }).passthrough(), signal: s })),
        ),
      ),
    );
    const sent = fake.requestsTo('/queued');
    expect(sent.map((r) => r.body.id)).toEqual(ids);
    expect(sent.map((r) => r.headers['x-request-id'])).toEqual(ids);
  });

  it("stops at once when the caller's signal aborts", async () => {
    fake.on('/hang2', () => ({ hang: true }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    const err = await failure(call(policy({ attempts: 3, timeoutMs: 5_000 }), '/hang2', controller.signal));
    expect(err.message).toBe('ai: call cancelled');
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(fake.requestsTo('/hang2')).toHaveLength(1);
  });

  it('stops at once when the caller gives up while the call waits before a retry (a Retry-After): no request follows', async () => {
    fake.on('/wait-retry', () => ({ status: 429, headers: { 'retry-after': '5' }, text: 'slow down' }));
    const controller = new AbortController();
    const p = policy({ attempts: 3 });
    const retried = new Promise((resolve) => p.onRetry(resolve));
    const pending = failure(call(p, '/wait-retry', controller.signal));
    await retried;
    const started = performance.now();
    controller.abort();
    const err = await pending;
    expect(err.code).toBe('UPSTREAM_TIMEOUT');
    expect(err.message).toBe('ai: call cancelled');
    // Not the 5 s the service asked to wait.
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(fake.requestsTo('/wait-retry')).toHaveLength(1);
    expect(p.breaker.snapshot()).toMatchObject({ state: 'CLOSED', failures: 0 });
  });

  it('frees the bulkhead slot of a call given up while it waits before a retry: the next call runs at once, and no attempt follows', async () => {
    fake.on('/slot-retry', () => ({ status: 429, headers: { 'retry-after': '2' }, text: 'slow down' }));
    fake.on('/slot-next', () => ({ json: { ok: true } }));
    const p = policy({ attempts: 3, concurrency: 1, queue: 0 });
    const controller = new AbortController();
    const retried = new Promise((resolve) => p.onRetry(resolve));
    const pending = failure(call(p, '/slot-retry', controller.signal));
    await retried;
    controller.abort();
    expect((await pending).message).toBe('ai: call cancelled');
    // One slot, no queue: the slot the cancelled call held is free, not held for its 2 s wait.
    expect((await call(p, '/slot-next')).value).toEqual({ ok: true });
    // Past the wait the cancelled call made no further attempt.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(fake.requestsTo('/slot-retry')).toHaveLength(1);
    expect(p.breaker.snapshot()).toMatchObject({ state: 'CLOSED', failures: 0 });
  });

  it('stops at once when the caller of a call waiting behind a half-open trial gives up', async () => {
    fake.on('/behind-trial', () => ({ status: 503, text: 'down' }));
    const p = policy({ attempts: 1, breakerFailures: 1, halfOpenAfterMs: 100, timeoutMs: 3_000 });
    await failure(call(p, '/behind-trial'));
    await new Promise((r) => setTimeout(r, 150));
    // The trial hangs until its 3 s timeout; a second call waits for its outcome.
    fake.on('/behind-trial', () => ({ hang: true }));
    const trial = failure(call(p, '/behind-trial'));
    await waitFor(() => fake.requestsTo('/behind-trial').length === 2, { timeoutMs: 5_000, what: 'the trial call to reach the service' });
    expect(p.breaker.snapshot().state).toBe('HALF_OPEN');
    const controller = new AbortController();
    const waiting = failure(call(p, '/behind-trial', controller.signal));
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    controller.abort();
    const err = await waiting;
    expect(err.message).toBe('ai: call cancelled');
    expect(performance.now() - started).toBeLessThan(1_000);
    expect((await trial).code).toBe('UPSTREAM_TIMEOUT');
    expect(fake.requestsTo('/behind-trial')).toHaveLength(2);
    expect(p.breaker.snapshot().state).toBe('OPEN');
  });

  it('scrubs a secret the service echoes where the quoted answer is cut: not even its first characters show', async () => {
    // The key starts 10 characters before the 200th of the quoted answer.
    fake.on('/echo-cut', (req) => ({ status: 401, text: `${'x'.repeat(185)} key=${String(req.headers.authorization).slice('Bearer '.length)} is not valid` }));
    const err = await failure(call(policy({ attempts: 1 }), '/echo-cut'));
    expect(err.code).toBe('UPSTREAM_REJECTED');
    expect(err.message).toContain(' key=[redacted]');
    expect(err.message).not.toContain('sk-live');
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
