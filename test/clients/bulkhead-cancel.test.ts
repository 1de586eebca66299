import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { callUpstream } from '../../src/clients/http.js';
import { DEFAULT_POLICY, ServicePolicy, type PolicySettings } from '../../src/clients/policies.js';
import { fakeUpstreamForFile } from '../support/fake-upstream.js';
import { waitFor } from '../support/service.js';

/** A call given up while it waits in the bulkhead's queue gives its place back at once. */

const okSchema = z.object({ ok: z.literal(true) });

const fake = fakeUpstreamForFile();

function policy(overrides: Partial<PolicySettings>): ServicePolicy {
  return new ServicePolicy('ai', { ...DEFAULT_POLICY, backoffMs: 20, timeoutMs: 5_000, ...overrides });
}

function call(p: ServicePolicy, path: string, signal?: AbortSignal) {
  return p.execute((s) => callUpstream({ service: 'ai', method: 'POST', url: fake.url(path), body: {}, schema: okSchema, signal: s, idempotent: true }), signal);
}

/** `path` answers each request only when `release()` is called (in order). */
function held(path: string): { release(): void } {
  const answers: Array<() => void> = [];
  fake.on(path, () => new Promise((resolve) => answers.push(() => resolve({ json: { ok: true } }))));
  return { release: () => answers.shift()?.() };
}

describe('bulkhead queue and cancellation', () => {
  it('a cancelled queued call frees its queue place at once: another call can wait in it', async () => {
    const gate = held('/q-place');
    const p = policy({ concurrency: 1, queue: 1 });
    const running = call(p, '/q-place');
    await waitFor(() => fake.requestsTo('/q-place').length === 1, { timeoutMs: 5_000, what: 'the first call to run' });
    const controller = new AbortController();
    const queued = call(p, '/q-place', controller.signal).catch((e: unknown) => e);
    controller.abort();
    expect(await queued).toMatchObject({ code: 'UPSTREAM_TIMEOUT', message: 'ai: call cancelled' });
    // The only queue place is free again: this call waits instead of being refused.
    const next = call(p, '/q-place').catch((e: unknown) => e);
    gate.release();
    expect((await running).value).toEqual({ ok: true });
    await waitFor(() => fake.requestsTo('/q-place').length === 2, { timeoutMs: 5_000, what: 'the queued call to run' });
    gate.release();
    expect(await next).toMatchObject({ value: { ok: true } });
    expect(fake.requestsTo('/q-place')).toHaveLength(2);
  });

  it('the call queued behind a cancelled one runs as soon as the slot frees, without waiting for another call', async () => {
    const gate = held('/q-behind');
    const p = policy({ concurrency: 1, queue: 5 });
    const running = call(p, '/q-behind');
    await waitFor(() => fake.requestsTo('/q-behind').length === 1, { timeoutMs: 5_000, what: 'the first call to run' });
    const controller = new AbortController();
    const cancelled = call(p, '/q-behind', controller.signal).catch((e: unknown) => e);
    const behind = call(p, '/q-behind');
    controller.abort();
    expect(await cancelled).toMatchObject({ message: 'ai: call cancelled' });
    gate.release();
    await running;
    await waitFor(() => fake.requestsTo('/q-behind').length === 2, { timeoutMs: 5_000, what: 'the call behind the cancelled one to run' });
    gate.release();
    expect((await behind).value).toEqual({ ok: true });
  });

  it('still refuses a call when every slot and queue place is taken, and runs the queue in order', async () => {
    fake.on('/q-order', () => ({ json: { ok: true }, delayMs: 30 }));
    const p = policy({ concurrency: 1, queue: 2 });
    const settled = await Promise.allSettled([0, 1, 2, 3].map((i) => p.execute((s) => callUpstream({ service: 'ai', method: 'POST', url: fake.url('/q-order'), body: { i }, schema: okSchema, signal: s, idempotent: true }))));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'UPSTREAM_RATE_LIMITED' });
    expect(fake.requestsTo('/q-order').map((r) => r.body.i)).toEqual([0, 1, 2]);
  });
});
