import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertManager } from '../../src/alerts/manager.js';
import type { AlertSettings } from '../../src/alerts/types.js';
import { DEFAULT_POLICY, ServicePolicy } from '../../src/clients/policies.js';
import { SlackNotifier } from '../../src/clients/slack.js';
import { ALERT_RULES } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { LogSink, uniquePrefix, waitFor } from '../support/service.js';

/** Alert managers of two processes against a redis-server of this file's own, notifying a stand-in Slack. */

let server: RedisServer;
let redis: Redis;
let slack: FakeUpstream;

beforeAll(async () => {
  [server, slack] = await Promise.all([startRedisServer(), startFakeUpstream()]);
  redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  redis?.disconnect();
  await Promise.allSettled([server?.close(), slack?.close()]);
});

const settings: AlertSettings = {
  rules: Object.fromEntries(ALERT_RULES.map((r) => [r, { enabled: r === 'QUEUE_DEPTH', threshold: 100, severity: 'critical', cooldownMs: 15 * 60_000 }])) as AlertSettings['rules'],
  errorRateWindowMs: 300_000,
  errorRateMinScans: 10,
  resolveAfterMs: 0,
};

function manager(origin: string, keyPrefix: string, hook: string, lockTtlMs: number, sink = new LogSink()) {
  return new AlertManager({
    redis,
    keyPrefix,
    settings,
    intervalMs: 10_000,
    lockTtlMs,
    origin,
    source: 'test',
    dedupPrefix: 'wcagai/test',
    notifiers: [new SlackNotifier(new ServicePolicy('slack', { ...DEFAULT_POLICY, attempts: 1 }), slack.url(hook))],
    logger: createLogger({ level: 'info', destination: sink }),
    figures: async () => ({ queue: { waiting: 500, active: 0, utilizationPercent: 10, maxCapacity: 5000 } }),
  });
}

describe('alert evaluation lock', () => {
  it('is renewed while an evaluation outlives its expiry: another process does not evaluate the same state and send the trigger again', async () => {
    const prefix = `{${uniquePrefix('alerts')}}:alerts`;
    let answered = false;
    // Slack answers slowly: the evaluation lasts several times the lock's 1 s expiry (renewed every
    // third of it, so a test process stalled for less than about 600 ms by a loaded machine still holds it).
    slack.on('/slow-hook', () => ({ text: 'ok', delayMs: 4_000 }));
    const a = manager('proc-A', prefix, '/slow-hook', 1_000);
    const b = manager('proc-B', prefix, '/slow-hook', 1_000);
    const evaluation = a.evaluateOnce().finally(() => (answered = true));
    await waitFor(() => slack.requestsTo('/slow-hook').length >= 1, { timeoutMs: 5_000, what: 'the trigger to reach Slack' });
    // Process B ticks while A's trigger is in flight.
    let bWon = 0;
    while (!answered) {
      if (await b.evaluateOnce()) bWon++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await evaluation).toBe(true);
    expect(bWon).toBe(0);
    expect(slack.requestsTo('/slow-hook')).toHaveLength(1);
    expect((await a.view()).firing.map((f) => f.id)).toEqual(['queue_depth']);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('saves the state only while it still holds the lock: an evaluator that lost it does not overwrite the newer state', async () => {
    const prefix = `{${uniquePrefix('alerts')}}:alerts`;
    const newer = JSON.stringify({ queue_depth: { id: 'queue_depth', rule: 'QUEUE_DEPTH', severity: 'critical', summary: 'newer', value: 1, threshold: 1, details: {}, status: 'firing', since: 1, notified: { slack: 1 } } });
    // While A's trigger is in flight its lock is gone and process B has evaluated and saved (as after a long Redis outage).
    slack.on('/taken-hook', async () => {
      await redis.set(`${prefix}:lock`, 'proc-B', 'PX', 60_000);
      await redis.set(`${prefix}:state`, newer);
      return { text: 'ok', delayMs: 200 };
    });
    const sink = new LogSink();
    const a = manager('proc-A', prefix, '/taken-hook', 60_000, sink);
    expect(await a.evaluateOnce()).toBe(true);
    expect(await redis.get(`${prefix}:state`)).toBe(newer);
    expect(await redis.get(`${prefix}:lock`)).toBe('proc-B');
    // What was sent is still in the history.
    expect((await a.view()).notifications.map((n) => `${n.channel}:${n.action}:${String(n.ok)}`)).toEqual(['slack:trigger:true']);
    expect(sink.events('alerts.lock_lost')).toHaveLength(1);
    await a.stop();
  });
});
