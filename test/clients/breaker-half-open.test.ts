import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { evaluateRules } from '../../src/alerts/rules.js';
import { alertSettingsOf } from '../../src/alerts/settings.js';
import { alertBreakers } from '../../src/app/integrations.js';
import { callUpstream, UpstreamError } from '../../src/clients/http.js';
import { DEFAULT_POLICY, ServicePolicy, type PolicySettings } from '../../src/clients/policies.js';
import { BreakerRegistry } from '../../src/clients/registry.js';
import { loadConfig } from '../../src/config/load.js';
import { fakeUpstreamForFile } from '../support/fake-upstream.js';
import { waitFor } from '../support/service.js';

/** A breaker left OPEN with no traffic: what health, the gauge's change events, the alert rule and the lists read. */

const okSchema = z.object({ ok: z.literal(true) });
const settings = { ...alertSettingsOf(loadConfig({})), resolveAfterMs: 0 };

const fake = fakeUpstreamForFile();

function policy(overrides: Partial<PolicySettings>): ServicePolicy {
  return new ServicePolicy('ai', { ...DEFAULT_POLICY, backoffMs: 20, timeoutMs: 5_000, attempts: 1, breakerFailures: 1, ...overrides });
}

function call(p: ServicePolicy, path: string, signal?: AbortSignal) {
  return p.execute((s) => callUpstream({ service: 'ai', method: 'POST', url: fake.url(path), body: {}, schema: okSchema, signal: s, idempotent: true }), signal);
}

const breakerOpenAlert = (registry: BreakerRegistry) => evaluateRules({ breakers: alertBreakers('p1', registry.snapshot()) }, settings).get('BREAKER_OPEN');

describe('an idle open breaker', () => {
  it('reads HALF_OPEN by itself once its half-open duration has passed, without a call: health, change listeners and BREAKER_OPEN follow', async () => {
    fake.on('/idle', () => ({ status: 503, text: 'down' }));
    const p = policy({ halfOpenAfterMs: 200 });
    const registry = new BreakerRegistry();
    registry.add(p.breaker);
    const changes: string[] = [];
    registry.onChange((c) => changes.push(`${c.from}>${c.to}:${c.cause}`));

    expect(await call(p, '/idle').catch((e: unknown) => (e as UpstreamError).code)).toBe('UPSTREAM_UNAVAILABLE');
    expect(registry.snapshot().ai).toMatchObject({ state: 'OPEN', trialInFlight: false });
    expect(registry.healthy()).toBe(false);
    expect(breakerOpenAlert(registry)).toMatchObject({ id: 'breaker_open', summary: 'circuit breaker open: ai' });

    // No call is made: the change is announced (the gauge listens to it) and every reader sees it.
    await waitFor(() => changes.includes('OPEN>HALF_OPEN:timer'), { timeoutMs: 5_000, what: 'the breaker to half-open by itself' });
    expect(registry.snapshot().ai).toMatchObject({ state: 'HALF_OPEN', trialInFlight: false, failures: 1 });
    expect(registry.healthy()).toBe(true);
    expect(breakerOpenAlert(registry)).toBeNull();
    expect(fake.requestsTo('/idle')).toHaveLength(1); // no probe traffic was sent

    // The next call is the trial: while it is in flight BREAKER_OPEN still counts the breaker (it may open again)…
    let answer: (a: { status: number; json?: unknown; text?: string }) => void = () => undefined;
    fake.on('/idle', () => new Promise((resolve) => (answer = resolve)));
    const trial = call(p, '/idle').catch((e: unknown) => e);
    await waitFor(() => fake.requestsTo('/idle').length === 2, { timeoutMs: 5_000, what: 'the trial call to reach the service' });
    expect(registry.snapshot().ai).toMatchObject({ state: 'HALF_OPEN', trialInFlight: true });
    expect(breakerOpenAlert(registry)).toMatchObject({ id: 'breaker_open' });
    // …and a failed trial opens it again, for another half-open period.
    answer({ status: 503, text: 'still down' });
    expect(await trial).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(registry.snapshot().ai).toMatchObject({ state: 'OPEN', trialInFlight: false });
    await waitFor(() => registry.snapshot().ai!.state === 'HALF_OPEN', { timeoutMs: 5_000, what: 'the breaker to half-open again' });

    // The service is back: the next call closes it.
    fake.on('/idle', () => ({ json: { ok: true } }));
    expect((await call(p, '/idle')).value).toEqual({ ok: true });
    expect(registry.snapshot().ai).toMatchObject({ state: 'CLOSED', failures: 0, openedAt: null });
    expect(changes).toEqual(['CLOSED>OPEN:call', 'OPEN>HALF_OPEN:timer', 'HALF_OPEN>OPEN:call', 'OPEN>HALF_OPEN:timer', 'HALF_OPEN>CLOSED:call']);
  });

  it('stays OPEN (no timer left behind) when reset or isolated before its half-open duration has passed', async () => {
    fake.on('/held', () => ({ status: 503, text: 'down' }));
    const p = policy({ halfOpenAfterMs: 150 });
    const registry = new BreakerRegistry();
    registry.add(p.breaker);
    const changes: string[] = [];
    registry.onChange((c) => changes.push(`${c.from}>${c.to}:${c.cause}`));
    await call(p, '/held').catch(() => undefined);
    registry.isolate('ai');
    await new Promise((r) => setTimeout(r, 300));
    expect(registry.snapshot().ai!.state).toBe('ISOLATED');
    registry.reset('ai');
    await call(p, '/held').catch(() => undefined);
    registry.reset('ai');
    await new Promise((r) => setTimeout(r, 300));
    expect(registry.snapshot().ai!.state).toBe('CLOSED');
    expect(changes).toEqual(['CLOSED>OPEN:call', 'OPEN>ISOLATED:isolate', 'ISOLATED>CLOSED:reset', 'CLOSED>OPEN:call', 'OPEN>CLOSED:reset']);
  });

  it("reads another process's breaker HALF_OPEN for the alert rule once its heartbeat's openedAt is older than its half-open duration", () => {
    const now = Date.parse('2026-11-30T12:00:00.000Z');
    const heartbeat = (state: string, openedAgoMs: number, extra: Record<string, unknown> = {}) => ({
      ai: { state, failures: 5, openedAt: new Date(now - openedAgoMs).toISOString(), halfOpenAfterMs: 30_000, lastFailure: null, lastFailureAt: null, ...extra },
    });
    // A process of an older version reports OPEN until a call arrives; a heartbeat is also up to an interval old.
    expect(alertBreakers('w1', heartbeat('OPEN', 10_000), now)).toEqual([{ name: 'ai', state: 'OPEN', trialInFlight: false, process: 'w1' }]);
    expect(alertBreakers('w1', heartbeat('OPEN', 30_000), now)).toEqual([{ name: 'ai', state: 'HALF_OPEN', trialInFlight: false, process: 'w1' }]);
    // An older version's HALF_OPEN is cockatiel's: its trial call is in flight.
    expect(alertBreakers('w1', heartbeat('HALF_OPEN', 40_000), now)).toEqual([{ name: 'ai', state: 'HALF_OPEN', trialInFlight: true, process: 'w1' }]);
    expect(alertBreakers('w1', heartbeat('ISOLATED', 40_000), now)).toEqual([{ name: 'ai', state: 'ISOLATED', trialInFlight: false, process: 'w1' }]);
    expect(evaluateRules({ breakers: alertBreakers('w1', heartbeat('OPEN', 30_000), now) }, settings).get('BREAKER_OPEN')).toBeNull();
  });
});
