import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysFor } from '../../src/queue/keys.js';
import { runCli } from '../cli/run-cli.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { startServeProcess, type ServeProcess } from '../support/serve-process.js';
import { startTestService, TEST_SETTINGS, uniquePrefix, waitFor, type TestService } from '../support/service.js';

/**
 * Two `wcagai serve` processes (API only) of one deployment: alerts are sent once for the fleet,
 * and breaker resets and isolations reach the other process through Redis pub/sub.
 */

const TOKEN = 'fleet-admin-token-0123456789';
const ROUTING_KEY = 'R0UTINGKEY0123456789';
const SLACK_PATH = '/services/T0000/B0000/SLACKSECRET42';
const auth = { authorization: `Bearer ${TOKEN}` };

type Serve = ServeProcess;

let redis: RedisServer;
let slack: FakeUpstream;
let pagerduty: FakeUpstream;
const prefix = uniquePrefix('fleet');
let a: Serve;
let b: Serve;
const extra: TestService[] = [];

const settings = (): Record<string, string> => ({
  ...TEST_SETTINGS,
  REDIS_URL: redis.url,
  QUEUE_PREFIX: prefix,
  ADMIN_TOKEN: TOKEN,
  ALERTS_INTERVAL: '250ms',
  ALERT_RESOLVE_AFTER: '500ms',
  ALERT_QUEUE_DEPTH_THRESHOLD: '3',
  ALERT_WORKERS_MISSING_ENABLED: 'false',
  SLACK_WEBHOOK_URL: slack.url(SLACK_PATH),
  PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
  PAGERDUTY_EVENTS_URL: pagerduty.url('/v2/enqueue'),
});

function startServe(): Promise<Serve> {
  return startServeProcess(settings());
}

async function http(server: Serve, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.base}${path}`, { method, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

beforeAll(async () => {
  [redis, slack, pagerduty] = await Promise.all([startRedisServer(), startFakeUpstream(), startFakeUpstream()]);
  slack.on(SLACK_PATH, () => ({ text: 'ok' }));
  pagerduty.on('/v2/enqueue', (req) => ({ status: 202, json: { status: 'success', message: 'Event processed', dedup_key: req.body?.dedup_key } }));
  [a, b] = await Promise.all([startServe(), startServe()]);
});

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop(), ...extra.map((s) => s.close())]);
  await Promise.allSettled([redis?.close(), slack?.close(), pagerduty?.close()]);
});

/** Removes every job of the deployment's queue (no worker runs: this is what makes a queue alert clear). */
async function emptyQueue(): Promise<void> {
  const keys = keysFor(prefix);
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(keys.queueName, { connection: conn, prefix: keys.bullPrefix });
  await queue.obliterate({ force: true });
  await queue.close();
  conn.disconnect();
}

const triggers = () => pagerduty.requestsTo('/v2/enqueue').filter((r) => r.body.event_action === 'trigger');
const resolves = () => pagerduty.requestsTo('/v2/enqueue').filter((r) => r.body.event_action === 'resolve');

describe('alerts across two serve processes', () => {
  it('queue depth over the threshold: one Slack message and one PagerDuty trigger for the fleet, then a resolve when it clears', async () => {
    // One batch: the four scans enter the queue together (no worker runs, so they stay waiting).
    const res = await http(a, 'POST', '/api/batches', { urls: [0, 1, 2, 3].map((i) => `http://127.0.0.1:9/depth-${i}.html`) });
    expect(res.status).toBe(202);
    await waitFor(() => slack.requestsTo(SLACK_PATH).length >= 1 && triggers().length >= 1, { timeoutMs: 10_000, what: 'the first notifications' });
    // Both processes evaluate every 250 ms for two more seconds: nothing more is sent within the cooldown.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(slack.requestsTo(SLACK_PATH)).toHaveLength(1);
    expect(triggers()).toHaveLength(1);

    const message = slack.requestsTo(SLACK_PATH)[0]!.body;
    expect(message.text).toMatch(/^\[critical\] 4 scans waiting in the queue \(threshold 3\)/);
    const trigger = triggers()[0]!.body;
    expect(trigger).toMatchObject({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: `wcagai/${prefix}/queue_depth`,
      payload: { summary: '4 scans waiting in the queue (threshold 3)', severity: 'critical', component: 'wcagai', custom_details: { value: 4, threshold: 3, waiting: 4 } },
    });
    expect(typeof trigger.payload.source).toBe('string');

    // Either process shows the fleet's alerts.
    const view = await http(b, 'GET', '/admin/alerts', undefined, auth);
    expect(view.status).toBe(200);
    expect(view.json.firing.map((f: any) => [f.id, f.severity, f.value])).toEqual([['queue_depth', 'critical', 4]]);
    expect(view.json.notifications.map((n: any) => `${n.channel}:${n.action}:${String(n.ok)}`).sort()).toEqual(['pagerduty:trigger:true', 'slack:trigger:true']);

    // Clear the queue: both channels hear the resolution once, under the same dedup key.
    await emptyQueue();
    await waitFor(() => resolves().length >= 1 && slack.requestsTo(SLACK_PATH).length >= 2, { timeoutMs: 10_000, what: 'the resolve' });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(resolves()).toHaveLength(1);
    expect(resolves()[0]!.body).toEqual({ routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: `wcagai/${prefix}/queue_depth` });
    expect(slack.requestsTo(SLACK_PATH)).toHaveLength(2);
    expect(slack.requestsTo(SLACK_PATH)[1]!.body.text).toMatch(/^\[resolved\] /);
    expect((await http(a, 'GET', '/admin/alerts', undefined, auth)).json.firing).toEqual([]);
    // Four notifications in all, whichever process sent each.
    expect(a.events('alerts.notified').length + b.events('alerts.notified').length).toBe(4);
    // The webhook's secret path never reaches a log line.
    expect(a.output() + b.output()).not.toContain('SLACKSECRET42');
  });
});

describe('silencing an alert across the fleet', () => {
  it('a silence set through one process stops notifications from the fleet but not the alert; lifting it notifies at once', async () => {
    const cli = (args: string[], server: Serve) => runCli(['alerts', ...args, '--url', server.base, '--token', TOKEN], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    const silenced = await cli(['silence', 'queue_depth', '--for', '10m', '--reason', 'planned maintenance'], a);
    expect(silenced.stderr).toBe('');
    expect(silenced.code).toBe(0);
    expect(silenced.stdout).toMatch(/^alert queue_depth silenced until \d{4}-\d\d-\d\dT[\d:.]+Z: it is still evaluated and shown, but no notification is sent\n$/);
    const [slackBefore, triggersBefore] = [slack.requestsTo(SLACK_PATH).length, triggers().length];

    const res = await http(b, 'POST', '/api/batches', { urls: [0, 1, 2, 3].map((i) => `http://127.0.0.1:9/silenced-${i}.html`) });
    expect(res.status).toBe(202);
    // Evaluated and shown firing (whichever process evaluates), with the silence on it.
    const firing = await waitFor(
      async () => {
        const view = await http(b, 'GET', '/admin/alerts', undefined, auth);
        return view.json.firing.find((f: any) => f.id === 'queue_depth' && f.value === 4);
      },
      { timeoutMs: 10_000, what: 'the silenced alert to fire' },
    );
    expect(firing.silencedUntil).toBeGreaterThan(Date.now() + 9 * 60_000);
    // Both processes evaluate every 250 ms: nothing is sent for two seconds.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(slack.requestsTo(SLACK_PATH)).toHaveLength(slackBefore);
    expect(triggers()).toHaveLength(triggersBefore);

    const list = await cli(['list', '--json'], b);
    expect(list.code, list.stderr).toBe(0);
    const view = JSON.parse(list.stdout) as { firing: any[]; silences: any[] };
    expect(view.silences).toEqual([{ alert: 'queue_depth', until: expect.any(Number), createdAt: expect.any(Number), reason: 'planned maintenance' }]);
    expect(view.firing.map((f) => [f.id, typeof f.silencedUntil])).toEqual([['queue_depth', 'number']]);
    const text = await cli(['list'], b);
    expect(text.stdout).toMatch(/^firing \(1\):\n {2}queue_depth {2}critical {2}4 scans waiting in the queue \(threshold 3\) {2}since \S+ {2}silenced until \S+\nsilences \(1\):\n {2}queue_depth {2}until \S+ {2}"planned maintenance"\n/);

    const lifted = await cli(['unsilence', 'queue_depth'], b);
    expect(lifted.code, lifted.stderr).toBe(0);
    expect(lifted.stdout).toBe('alert queue_depth: silence lifted; notifications resume\n');
    await waitFor(() => triggers().length === triggersBefore + 1 && slack.requestsTo(SLACK_PATH).length === slackBefore + 1, { timeoutMs: 10_000, what: 'the trigger once the silence is lifted' });
    expect(triggers().at(-1)!.body).toMatchObject({ event_action: 'trigger', dedup_key: `wcagai/${prefix}/queue_depth`, payload: { custom_details: { value: 4 } } });
    expect((await cli(['unsilence', 'queue_depth'], a)).stdout).toBe('alert queue_depth was not silenced\n');

    // Clear the queue again: the incident this trigger opened is resolved.
    await emptyQueue();
    await waitFor(() => resolves().length >= 2, { timeoutMs: 10_000, what: 'the resolve' });
  });

  it('refuses an unknown alert and a duration out of range, in one line, and needs the admin token', async () => {
    const cli = (args: string[]) => runCli(['alerts', ...args, '--url', a.base, '--token', TOKEN], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    const unknown = await cli(['silence', 'nope', '--for', '1h']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('wcagai: POST /admin/alerts/nope/silence: no alert named "nope": one of error_rate, queue_depth, queue_utilization, breaker_open, dlq_growth, rss, workers_missing\n');
    const short = await cli(['silence', 'rss', '--for', '10s']);
    expect(short.code).toBe(1);
    expect(short.stderr).toBe('wcagai: POST /admin/alerts/rss/silence: invalid body: for: expected a duration from 1m to 30d, such as 30m or 2h\n');
    const noToken = await http(a, 'POST', '/admin/alerts/rss/silence', { for: '1h' });
    expect(noToken.status).toBe(401);
    const bad = await http(a, 'POST', '/admin/alerts/rss/silence', { for: '1h', until: 'never' }, auth);
    expect(bad.status).toBe(400);
    expect(bad.json.errors).toEqual([{ field: 'until', message: 'unknown field(s): until' }]);
    expect((await http(a, 'GET', '/admin/alerts', undefined, auth)).json.silences).toEqual([]);
  });
});

describe('breaker control across the fleet', () => {
  it('isolate through the CLI on one process reaches the other through pub/sub, and processes started later', async () => {
    const run = await runCli(['breakers', 'isolate', 'ai', '--url', a.base, '--token', TOKEN], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('circuit breaker ai: isolated, now ISOLATED; reached 1 other process(es)\n');
    const seen = await waitFor(
      async () => {
        const res = await http(b, 'GET', '/admin/breakers', undefined, auth);
        return res.json.process.breakers.ai.state === 'ISOLATED' ? res.json : undefined;
      },
      { timeoutMs: 5_000, what: 'the isolation to reach the other process' },
    );
    expect(seen.process.breakers.hubspot.state).toBe('CLOSED');
    const health = await http(b, 'GET', '/health/detailed');
    expect(health.json.circuitBreakers.healthy).toBe(false);
    expect(health.json.circuitBreakers.services.ai).toMatchObject({ state: 'ISOLATED', failures: 0 });
    expect(b.events('breaker.isolate').length).toBeGreaterThanOrEqual(1);

    // A process started after the isolation joins isolated.
    const late = await startTestService({ redisUrl: redis.url, prefix, settings: { ADMIN_TOKEN: TOKEN, ALERTS_ENABLED: 'false' } });
    extra.push(late);
    expect((await late.get('/admin/breakers', auth)).json.process.breakers.ai.state).toBe('ISOLATED');
  });

  it('reset through the admin route on one process closes the breaker everywhere; the CLI lists it', async () => {
    const res = await http(b, 'POST', '/admin/breakers/ai/reset', undefined, auth);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ action: 'reset', name: 'ai', breaker: { state: 'CLOSED', failures: 0 } });
    expect(res.json.reached).toBe(2);
    await waitFor(async () => (await http(a, 'GET', '/admin/breakers', undefined, auth)).json.process.breakers.ai.state === 'CLOSED', { timeoutMs: 5_000, what: 'the reset to reach A' });
    await waitFor(async () => (await extra[0]!.get('/admin/breakers', auth)).json.process.breakers.ai.state === 'CLOSED', { timeoutMs: 5_000, what: 'the reset to reach the in-process service' });

    // A answered; B and the in-process service are API processes too, listed from their heartbeats
    // (which say CLOSED from their next beat on).
    const rows = await waitFor(
      async () => {
        const list = await runCli(['breakers', 'list'], { env: { WCAGAI_URL: a.base, ADMIN_TOKEN: TOKEN } });
        expect(list.code, list.stderr).toBe(0);
        const lines = list.stdout.trim().split('\n');
        return lines.filter((r) => / api\s+ai\s+CLOSED\s+0 /.test(r)).length === 3 ? lines : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, what: 'every process listing ai CLOSED' },
    );
    expect(rows[0]).toMatch(/^PROCESS\s+ROLE\s+SERVICE\s+STATE\s+FAILURES\s+LAST FAILURE\s+OPENED AT$/);
    expect(rows.filter((r) => /\(answered\)\s+api\s+ai\s+CLOSED\s+0 /.test(r))).toHaveLength(1);
    expect(rows).toHaveLength(1 + 3 * 5);
  });

  it('the other way round: isolate through the admin route, reset through the CLI, each reaching the other process', async () => {
    const isolated = await http(a, 'POST', '/admin/breakers/hubspot/isolate', undefined, auth);
    expect(isolated.status).toBe(200);
    expect(isolated.json).toMatchObject({ action: 'isolate', name: 'hubspot', breaker: { state: 'ISOLATED' } });
    await waitFor(async () => (await http(b, 'GET', '/admin/breakers', undefined, auth)).json.process.breakers.hubspot.state === 'ISOLATED', { timeoutMs: 5_000, what: 'the isolation to reach B' });

    const reset = await runCli(['breakers', 'reset', 'hubspot', '--url', b.base, '--token', TOKEN], { env: { WCAGAI_URL: '', ADMIN_TOKEN: '' } });
    expect(reset.stderr).toBe('');
    expect(reset.code).toBe(0);
    expect(reset.stdout).toMatch(/^circuit breaker hubspot: reset, now CLOSED; reached \d+ other process\(es\)\n$/);
    await waitFor(async () => (await http(a, 'GET', '/admin/breakers', undefined, auth)).json.process.breakers.hubspot.state === 'CLOSED', { timeoutMs: 5_000, what: 'the reset to reach A' });
  });

  it('answers 404 for an unknown breaker and 401 without the admin token', async () => {
    const unknown = await runCli(['breakers', 'reset', 'nope', '--url', a.base, '--token', TOKEN]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no circuit breaker named "nope"; known: ai, apollo, hubspot, slack, pagerduty/);
    const anonymous = await http(a, 'POST', '/admin/breakers/ai/isolate');
    expect(anonymous.status).toBe(401);
    expect((await http(a, 'GET', '/admin/breakers', undefined, auth)).json.process.breakers.ai.state).toBe('CLOSED');
  });
});
