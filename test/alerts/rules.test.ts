import { describe, expect, it } from 'vitest';
import { pagerDutyEvent, pagesOnCall, slackMessage } from '../../src/alerts/notifiers.js';
import { evaluateRules } from '../../src/alerts/rules.js';
import { alertSettingsOf } from '../../src/alerts/settings.js';
import { plan, recordSend, RESOLVE_GIVE_UP_MS, type AlertState, type Silences } from '../../src/alerts/state.js';
import type { Figures, Severity } from '../../src/alerts/types.js';
import { loadConfig } from '../../src/config/load.js';

const GIB = 2 ** 30;
const configured = alertSettingsOf(loadConfig({}));
/** The defaults, resolving a cleared alert at once (the hold before a resolve has tests of its own). */
const defaults = { ...configured, resolveAfterMs: 0 };
const CHANNELS = [
  { channel: 'slack', accepts: (_s: Severity) => true },
  { channel: 'pagerduty', accepts: pagesOnCall },
];
const quiet: Figures = {
  queue: { waiting: 0, active: 0, utilizationPercent: 0, maxCapacity: 1000 },
  scans: { completed: 50, failed: 0, windowMs: 300_000 },
  breakers: [{ name: 'ai', state: 'CLOSED', process: 'p1' }],
  dlq: { size: 0, lastHourAdded: 0 },
  processes: [{ id: 'p1', rssBytes: 200 * 2 ** 20 }],
  workers: 2,
};

const firing = (figures: Figures, settings = defaults) =>
  [...evaluateRules(figures, settings).values()].filter((v): v is Exclude<typeof v, null | 'unknown'> => v !== null && v !== 'unknown');

describe('alert rules (pure)', () => {
  it('have the documented defaults', () => {
    expect(defaults.rules.ERROR_RATE).toEqual({ enabled: true, threshold: 10, severity: 'warning', cooldownMs: 900_000 });
    expect(defaults.rules.QUEUE_DEPTH).toMatchObject({ threshold: 100, severity: 'critical' });
    expect(defaults.rules.BREAKER_OPEN).toMatchObject({ threshold: 1, severity: 'error' });
    expect(defaults.rules.RSS).toMatchObject({ threshold: 1024, severity: 'warning' });
    expect(defaults.errorRateWindowMs).toBe(300_000);
    expect(configured.resolveAfterMs).toBe(60_000);
  });

  it('stay quiet on a healthy deployment', () => {
    expect(firing(quiet)).toEqual([]);
  });

  it('fire each at its threshold with its severity and a readable summary', () => {
    const hot: Figures = {
      queue: { waiting: 100, active: 4, utilizationPercent: 85, maxCapacity: 120 },
      scans: { completed: 18, failed: 2, windowMs: 300_000 },
      breakers: [
        { name: 'ai', state: 'OPEN', process: 'w1' },
        { name: 'ai', state: 'OPEN', process: 'w2' },
        { name: 'hubspot', state: 'HALF_OPEN', process: 'w1' },
      ],
      dlq: { size: 40, lastHourAdded: 12 },
      processes: [
        { id: 'w1', rssBytes: GIB },
        { id: 'w2', rssBytes: 0.5 * GIB },
      ],
      workers: 0,
    };
    const alerts = Object.fromEntries(firing(hot).map((a) => [a.id, a]));
    expect(Object.keys(alerts).sort()).toEqual(['breaker_open', 'dlq_growth', 'error_rate', 'queue_depth', 'queue_utilization', 'rss', 'workers_missing']);
    expect(alerts.error_rate).toMatchObject({ severity: 'warning', value: 10, summary: 'scan error rate 10% over the last 5 min (2 of 20 failed; threshold 10%)' });
    expect(alerts.queue_depth).toMatchObject({ severity: 'critical', value: 100, summary: '100 scans waiting in the queue (threshold 100)' });
    expect(alerts.breaker_open).toMatchObject({ severity: 'error', value: 2, summary: 'circuit breaker open: ai, hubspot' });
    expect(alerts.rss).toMatchObject({ severity: 'warning', value: 1024 });
    expect(alerts.workers_missing).toMatchObject({ severity: 'critical', value: 0 });
  });

  it('count a HALF_OPEN breaker as open while its trial call is in flight: it can last the whole timeout and may open it again', () => {
    const breakers = (state: string, trialInFlight?: boolean): Figures => ({ ...quiet, breakers: [{ name: 'ai', state, process: 'w1', ...(trialInFlight === undefined ? {} : { trialInFlight }) }] });
    expect(firing(breakers('HALF_OPEN', true)).map((a) => [a.id, a.value, a.summary])).toEqual([['breaker_open', 1, 'circuit breaker open: ai']]);
    // A process of an older version says nothing of the trial: its HALF_OPEN is a trial in flight.
    expect(firing(breakers('HALF_OPEN')).map((a) => a.id)).toEqual(['breaker_open']);
    expect(firing(breakers('ISOLATED'))).toEqual([]);
    // A dead service probed every half-open period: OPEN, HALF_OPEN, OPEN… is one alert, never resolved in between.
    let t = 0;
    let r = step({}, breakers('OPEN'), t);
    expect(r.sends).toEqual(['slack:trigger:breaker_open', 'pagerduty:trigger:breaker_open']);
    for (const state of ['HALF_OPEN', 'OPEN', 'HALF_OPEN', 'OPEN']) {
      r = step(r.state, breakers(state, state === 'HALF_OPEN'), (t += 1_000));
      expect(r.sends).toEqual([]);
    }
  });

  it('do not count a breaker HALF_OPEN with no trial in flight (its open period over, no call since): the alert resolves', () => {
    const breakers = (state: string, trialInFlight: boolean): Figures => ({ ...quiet, breakers: [{ name: 'ai', state, process: 'w1', trialInFlight }] });
    expect(firing(breakers('HALF_OPEN', false))).toEqual([]);
    const held = { ...configured, resolveAfterMs: 60_000 };
    let r = step({}, breakers('OPEN', false), 0, {}, held);
    expect(r.sends).toEqual(['slack:trigger:breaker_open', 'pagerduty:trigger:breaker_open']);
    // Idle after the outage: clear from the half-open on, resolved once ALERT_RESOLVE_AFTER has passed.
    r = step(r.state, breakers('HALF_OPEN', false), 30_000, {}, held);
    expect(r.sends).toEqual([]);
    r = step(r.state, breakers('HALF_OPEN', false), 90_000, {}, held);
    expect(r.sends).toEqual(['slack:resolve:breaker_open', 'pagerduty:resolve:breaker_open']);
  });

  it('need enough scans for an error rate, and a figure they cannot read leaves them unknown', () => {
    expect(firing({ ...quiet, scans: { completed: 1, failed: 5, windowMs: 300_000 } })).toEqual([]);
    const verdicts = evaluateRules({}, defaults);
    expect([...verdicts.values()].every((v) => v === 'unknown')).toBe(true);
  });

  it('respect enabled flags and configured thresholds and severities', () => {
    const settings = alertSettingsOf(loadConfig({}, { ALERT_QUEUE_DEPTH_THRESHOLD: '5', ALERT_QUEUE_DEPTH_SEVERITY: 'warning', ALERT_RSS_ENABLED: 'false' }));
    const alerts = firing({ ...quiet, queue: { waiting: 5, active: 0, utilizationPercent: 1, maxCapacity: 1000 }, processes: [{ id: 'p', rssBytes: 4 * GIB }] }, settings);
    expect(alerts.map((a) => [a.id, a.severity])).toEqual([['queue_depth', 'warning']]);
  });
});

/** One evaluation in which every send succeeds. */
function step(state: AlertState, figures: Figures, now: number, silences: Silences = {}, settings = defaults) {
  const { next, sends } = plan(state, evaluateRules(figures, settings), now, settings, CHANNELS, silences);
  for (const s of sends) recordSend(next, s, true, now);
  return { state: next, sends: sends.map((s) => `${s.channel}:${s.action}:${s.alert.id}`) };
}

describe('notification planning (pure: the clock is a parameter)', () => {
  const depth = (waiting: number): Figures => ({ ...quiet, queue: { waiting, active: 0, utilizationPercent: 1, maxCapacity: 1000 } });
  const cooldown = defaults.rules.QUEUE_DEPTH.cooldownMs;

  it('notifies once, again only after the cooldown while still firing, and resolves when cleared', () => {
    let t = 1_000_000;
    let r = step({}, depth(150), t);
    expect(r.sends).toEqual(['slack:trigger:queue_depth', 'pagerduty:trigger:queue_depth']);
    r = step(r.state, depth(160), (t += 10_000));
    expect(r.sends).toEqual([]);
    r = step(r.state, depth(170), (t += cooldown - 10_001));
    expect(r.sends).toEqual([]);
    r = step(r.state, depth(170), (t += 1));
    expect(r.sends).toEqual(['slack:trigger:queue_depth', 'pagerduty:trigger:queue_depth']);
    expect(r.state.queue_depth!.since).toBe(1_000_000);
    r = step(r.state, depth(3), (t += 10_000));
    expect(r.sends).toEqual(['slack:resolve:queue_depth', 'pagerduty:resolve:queue_depth']);
    expect(r.state).toEqual({});
    r = step(r.state, depth(3), (t += 10_000));
    expect(r.sends).toEqual([]);
  });

  it('resolves a cleared alert only once it has stayed clear for ALERT_RESOLVE_AFTER: firing again before is the same alert, cooldown included', () => {
    const held = configured; // resolveAfterMs 60 s
    const hold = held.resolveAfterMs;
    let t = 0;
    let r = step({}, depth(150), t, {}, held);
    expect(r.sends).toEqual(['slack:trigger:queue_depth', 'pagerduty:trigger:queue_depth']);
    // Flapping: clear, firing, clear… within the hold: nothing sent, still firing since the start.
    r = step(r.state, depth(3), (t += 10_000), {}, held);
    expect(r.sends).toEqual([]);
    expect(r.state.queue_depth).toMatchObject({ status: 'firing', since: 0, clearedAt: 10_000 });
    r = step(r.state, depth(150), (t += 10_000), {}, held);
    expect(r.sends).toEqual([]);
    expect(r.state.queue_depth!.clearedAt).toBeUndefined();
    r = step(r.state, depth(3), (t += 10_000), {}, held);
    r = step(r.state, depth(3), (t += hold - 1), {}, held);
    expect(r.sends).toEqual([]);
    expect(r.state.queue_depth).toMatchObject({ status: 'firing', since: 0, clearedAt: 30_000 });
    // Clear for the whole hold: resolved.
    r = step(r.state, depth(3), (t += 1), {}, held);
    expect(r.sends).toEqual(['slack:resolve:queue_depth', 'pagerduty:resolve:queue_depth']);
    expect(r.state).toEqual({});
    // A new episode after the resolve is a new alert: triggered at once.
    r = step(r.state, depth(150), (t += 1_000), {}, held);
    expect(r.sends).toEqual(['slack:trigger:queue_depth', 'pagerduty:trigger:queue_depth']);
  });

  it('sends no trigger for a silenced alert but shows it firing, and triggers at once when the silence ends', () => {
    const silences: Silences = { queue_depth: { alert: 'queue_depth', until: 60_000, createdAt: 0, reason: 'maintenance' } };
    let r = step({}, depth(150), 0, silences);
    expect(r.sends).toEqual([]);
    expect(r.state.queue_depth).toMatchObject({ status: 'firing', silencedUntil: 60_000, notified: {} });
    r = step(r.state, depth(150), 59_999, silences);
    expect(r.sends).toEqual([]);
    // The silence has ended (expired, or lifted: either way it is no longer among the silences).
    r = step(r.state, depth(150), 60_000, silences);
    expect(r.sends).toEqual(['slack:trigger:queue_depth', 'pagerduty:trigger:queue_depth']);
    expect(r.state.queue_depth!.silencedUntil).toBeUndefined();
    expect(r.state.queue_depth!.since).toBe(0);
  });

  it('silencing after a trigger stops repeats but not the resolve; an alert cleared while silenced before any trigger owes nothing', () => {
    const cooldownLater = cooldown + 1;
    let r = step({}, depth(150), 0);
    expect(r.sends).toHaveLength(2);
    const silences: Silences = { queue_depth: { alert: 'queue_depth', until: 10 * cooldown, createdAt: 1 } };
    r = step(r.state, depth(150), cooldownLater, silences);
    expect(r.sends).toEqual([]);
    r = step(r.state, depth(0), cooldownLater + 1, silences);
    expect(r.sends).toEqual(['slack:resolve:queue_depth', 'pagerduty:resolve:queue_depth']);

    let quietRun = step({}, depth(150), 0, silences);
    quietRun = step(quietRun.state, depth(0), 1_000, silences);
    expect(quietRun.sends).toEqual([]);
    expect(quietRun.state).toEqual({});
  });

  it('sends warnings to Slack only, and resolves only where the trigger went', () => {
    const figures: Figures = { ...quiet, processes: [{ id: 'p', rssBytes: 2 * GIB }] };
    let r = step({}, figures, 0);
    expect(r.sends).toEqual(['slack:trigger:rss']);
    r = step(r.state, quiet, 1_000);
    expect(r.sends).toEqual(['slack:resolve:rss']);
  });

  it('retries a failed trigger on the next evaluation and owes no resolve for a channel never reached', () => {
    const first = plan({}, evaluateRules(depth(200), defaults), 0, defaults, CHANNELS);
    for (const s of first.sends) recordSend(first.next, s, s.channel === 'slack', 0);
    const second = plan(first.next, evaluateRules(depth(200), defaults), 5_000, defaults, CHANNELS);
    expect(second.sends.map((s) => `${s.channel}:${s.action}`)).toEqual(['pagerduty:trigger']);
    const cleared = plan(first.next, evaluateRules(depth(0), defaults), 6_000, defaults, CHANNELS);
    expect(cleared.sends.map((s) => `${s.channel}:${s.action}`)).toEqual(['slack:resolve']);
  });

  it('keeps owing a resolve that failed, until delivered or given up', () => {
    const r = step({}, depth(200), 0);
    const cleared = plan(r.state, evaluateRules(depth(0), defaults), 1_000, defaults, CHANNELS);
    for (const s of cleared.sends) recordSend(cleared.next, s, s.channel === 'slack', 1_000);
    expect(cleared.next.queue_depth).toMatchObject({ status: 'resolved', pendingResolve: ['pagerduty'] });
    const again = plan(cleared.next, evaluateRules(depth(0), defaults), 2_000, defaults, CHANNELS);
    expect(again.sends.map((s) => `${s.channel}:${s.action}`)).toEqual(['pagerduty:resolve']);
    const late = plan(cleared.next, evaluateRules(depth(0), defaults), 1_000 + RESOLVE_GIVE_UP_MS + 1, defaults, CHANNELS);
    expect(late.sends).toEqual([]);
    expect(late.next).toEqual({});
  });

  it('keeps an alert as it was while its figures are unknown', () => {
    const r = step({}, depth(200), 0);
    const unknown = step(r.state, { ...quiet, queue: undefined }, 5_000);
    expect(unknown.sends).toEqual([]);
    expect(unknown.state.queue_depth?.status).toBe('firing');
  });
});

describe('notification payloads', () => {
  const alert = { id: 'queue_depth', rule: 'QUEUE_DEPTH' as const, severity: 'critical' as const, summary: '150 scans waiting', value: 150, threshold: 100, details: { waiting: 150 } };

  it('PagerDuty v2: trigger with summary, source, severity, custom_details; resolve with the same dedup key', () => {
    const trigger = pagerDutyEvent(alert, 'trigger', 'rk', 'api.example', 'wcagai/prod/queue_depth', new Date(0));
    expect(trigger).toEqual({
      routing_key: 'rk',
      event_action: 'trigger',
      dedup_key: 'wcagai/prod/queue_depth',
      payload: { summary: '150 scans waiting', source: 'api.example', severity: 'critical', timestamp: '1970-01-01T00:00:00.000Z', component: 'wcagai', group: 'queue_depth', class: 'queue_depth', custom_details: { value: 150, threshold: 100, waiting: 150 } },
    });
    expect(pagerDutyEvent(alert, 'resolve', 'rk', 'api.example', 'wcagai/prod/queue_depth')).toEqual({ routing_key: 'rk', event_action: 'resolve', dedup_key: 'wcagai/prod/queue_depth' });
  });

  it('Slack: text fallback and blocks, resolved messages marked as such', () => {
    expect(slackMessage(alert, 'trigger', 'api.example').text).toBe('[critical] 150 scans waiting (api.example)');
    expect(slackMessage(alert, 'resolve', 'api.example').text).toBe('[resolved] 150 scans waiting (api.example)');
    expect(JSON.stringify(slackMessage(alert, 'trigger', 'x').blocks)).toContain('*CRITICAL* 150 scans waiting');
  });
});
