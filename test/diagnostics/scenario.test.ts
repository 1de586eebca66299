import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO, loadScenario, parseScenario, SCENARIOS_DIR } from '../../src/diagnostics/scenario.js';
import { WcagaiError } from '../../src/errors/catalogue.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'wcagai-scenario-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const base = { duration: '10s', pages: ['/clean.html'] };

/** The one-line message a scenario is refused with. */
function refusal(raw: unknown, file = 'bad.json'): string {
  try {
    parseScenario(raw, file);
  } catch (err) {
    expect(err).toBeInstanceOf(WcagaiError);
    expect((err as WcagaiError).code).toBe('USAGE');
    const message = (err as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('the scenario was accepted');
}

describe('shipped scenarios', () => {
  const files = readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.json'));

  it('are the four the issue names, and all valid', async () => {
    expect(files.sort()).toEqual(['100-concurrent-scans.json', 'enqueue-burst.json', 'soak.json', 'spike.json']);
    for (const f of files) {
      const s = await loadScenario(f.replace(/\.json$/, ''));
      expect(s.name).toBe(f.replace(/\.json$/, ''));
      expect(s.target).toBe('self');
      expect(Object.keys(s.thresholds).length).toBeGreaterThan(0);
    }
  });

  it('100-concurrent-scans is the default: 100 connections, every one a Prefer: wait scan', async () => {
    const s = await loadScenario(DEFAULT_SCENARIO);
    expect(s.connections).toBe(100);
    expect(s.stages).toEqual([{ startMs: 0, connections: 100, durationMs: 60_000, amount: null, mix: { scan: 1, enqueue: 0, status: 0, health: 0 } }]);
    expect(s.waitSeconds).toBe(120);
    expect(s.timeoutMs).toBeGreaterThan(120_000);
    expect(s.thresholds.scan_duration?.[0]?.source).toBe('p(95)<30000');
    expect(s.thresholds.http_req_failed?.[0]?.source).toBe('rate<0.10');
  });

  it('soak runs 10 minutes; enqueue-burst caps the queue; spike has a baseline and a burst', async () => {
    expect((await loadScenario('soak')).stages.at(-1)!.startMs + (await loadScenario('soak')).stages.at(-1)!.durationMs!).toBe(600_000);
    expect((await loadScenario('enqueue-burst')).stack.settings.MAX_QUEUE_DEPTH).toBeDefined();
    const spike = await loadScenario('spike');
    expect(spike.stages.map((s) => s.connections)).toEqual([4, 150]);
    // Both stages are open from 20 s to 35 s.
    expect(spike.connections).toBe(154);
    // The soak ramps 10 connections up one at a time: its peak is all ten.
    expect((await loadScenario('soak')).connections).toBe(10);
  });
});

describe('parseScenario', () => {
  it('applies command-line overrides before validation', () => {
    const s = parseScenario({ ...base, connections: 5, stages: [{ connections: 2, duration: '1s' }] }, 'x.json', { connections: 7, duration: '3s' });
    expect(s.stages).toEqual([{ startMs: 0, connections: 7, durationMs: 3_000, amount: null, mix: { scan: 1, enqueue: 0, status: 0, health: 0 } }]);
    const a = parseScenario(base, 'x.json', { amount: 40, connections: 100 });
    expect(a.stages[0]).toMatchObject({ connections: 40, amount: 40, durationMs: null });
    expect(parseScenario(base, 'x.json', { target: 'http://127.0.0.1:8080' }).target).toBe('http://127.0.0.1:8080');
  });

  it('splits an amount over a ramp so the stages add up to it', () => {
    const s = parseScenario({ pages: base.pages, connections: 10, amount: 15, rampUp: '5s' }, 'x.json');
    expect(s.stages.map((st) => st.amount)).toEqual([2, 2, 2, 2, 2, 1, 1, 1, 1, 1]);
    expect(s.stages.every((st) => st.amount! >= st.connections)).toBe(true);
  });

  it("lets the flags replace a shipped scenario's load, naming the flag when they conflict with it", async () => {
    // --concurrent drops the spike's stages and keeps its length.
    const spike = await loadScenario('spike', { connections: 5 });
    expect(spike.stages).toMatchObject([{ startMs: 0, connections: 5, durationMs: 60_000 }]);
    expect(parseScenario({ ...base, duration: undefined, stages: [{ connections: 2, amount: 30 }, { start: '5s', connections: 3, amount: 20 }] }, 'x.json', { connections: 4 }).stages).toMatchObject([{ connections: 4, amount: 50 }]);
    await expect(loadScenario('soak', { duration: '5s' })).rejects.toThrow(/^--duration 5s is not longer than the rampUp of .*soak\.json \(30s\)/);
    expect((await loadScenario('soak', { duration: '45s' })).stages.at(-1)).toMatchObject({ durationMs: expect.any(Number) });
  });

  it('keeps a maxDuration the file gives as a hard bound, and refuses durations no timer can wait', () => {
    expect(parseScenario({ ...base, duration: '2m', maxDuration: '1m' }, 'x.json').maxDurationMs).toBe(60_000);
    expect(parseScenario({ ...base, duration: '20m' }, 'x.json').maxDurationMs).toBe(20 * 60_000);
    expect(parseScenario({ ...base, duration: '2m' }, 'x.json').maxDurationMs).toBe(15 * 60_000);
    expect(() => parseScenario({ ...base, duration: '30d' }, 'x.json')).toThrow(/x\.json: duration: expected at most 24d/);
  });

  it('ramps up over up to ten stages that end together', () => {
    const s = parseScenario({ ...base, connections: 25, duration: '60s', rampUp: '10s' }, 'x.json');
    expect(s.stages).toHaveLength(10);
    expect(s.stages.reduce((n, st) => n + st.connections, 0)).toBe(25);
    expect(s.stages[0]!.startMs).toBe(0);
    expect(s.stages[9]!.startMs).toBe(9_000);
    for (const st of s.stages) expect(st.startMs + st.durationMs!).toBe(60_000);
    const small = parseScenario({ ...base, connections: 3, duration: '60s', rampUp: '10s' }, 'x.json');
    expect(small.stages.map((st) => st.connections)).toEqual([1, 1, 1]);
  });

  it('names the file and every bad field on one line', () => {
    const message = refusal({ pages: ['clean.html', { url: '/a', weight: -1 }], connections: 'many', mix: { scan: 1, browse: 2 }, extra: true, duration: 'soon' }, 'scenarios/broken.json');
    expect(message).toMatch(/^scenarios\/broken\.json: /);
    expect(message).toMatch(/pages\[0\]: /);
    expect(message).toMatch(/connections: expected an integer/);
    expect(message).toMatch(/mix\.browse: unknown field/);
    expect(message).toMatch(/extra: unknown field/);
    expect(message).toMatch(/duration: expected a duration/);
  });

  it('refuses thresholds naming the metric and the expression', () => {
    expect(refusal({ ...base, thresholds: { scan_duration: ['p95<3000'] } })).toMatch(/thresholds\.scan_duration\[0\]: "p95<3000": expected an aggregation/);
    expect(refusal({ ...base, thresholds: { scan_time: ['p(95)<3000'] } })).toMatch(/thresholds\.scan_time\[0\]: unknown metric "scan_time"/);
    expect(refusal({ ...base, thresholds: { http_req_failed: ['p(95)<0.1'] } })).toMatch(/thresholds\.http_req_failed\[0\]: p\(95\) does not apply/);
    expect(refusal({ ...base, thresholds: { http_req_failed: [] } })).toMatch(/thresholds\.http_req_failed: expected at least one expression/);
    expect(refusal({ ...base, thresholds: { http_req_failed: 'rate<0.1' } })).toMatch(/thresholds\.http_req_failed: expected a list/);
  });

  it('refuses a run that is neither timed nor counted, a zero mix, and a ramp longer than the run', () => {
    expect(refusal({ pages: ['/a'] })).toMatch(/duration: give either duration or amount/);
    expect(refusal({ ...base, amount: 5 })).toMatch(/duration: give either duration or amount/);
    expect(refusal({ ...base, mix: { scan: 0 } })).toMatch(/mix: at least one of scan, enqueue, status, health/);
    expect(refusal({ ...base, rampUp: '10s' })).toMatch(/rampUp: rampUp must be shorter than duration/);
    expect(refusal({ ...base, stages: [{ connections: 2 }] })).toMatch(/stages\[0\]\.duration: give either duration or amount/);
    expect(refusal({ ...base, target: 'ftp://x' })).toMatch(/target: /);
    expect(refusal({ ...base, wait: 500 })).toMatch(/wait: expected an integer <= 120/);
    expect(refusal({ ...base, stack: { settings: { 'bad-name': '1' } } })).toMatch(/stack\.settings\.bad-name: expected an environment variable name/);
    expect(refusal([])).toMatch(/\(top level\): /);
  });

  it('refuses top-level connections, duration, amount or rampUp beside stages instead of ignoring them', () => {
    const stages = [{ connections: 2, duration: '5s' }];
    for (const [field, value] of [['connections', 50], ['duration', '30s'], ['amount', 100], ['rampUp', '2s']] as const) {
      expect(refusal({ pages: ['/a'], stages, [field]: value }, 'staged.json')).toMatch(new RegExp(`^staged\\.json: ${field}: does not go with stages`));
    }
    // A flag that replaces the load still applies to a staged file.
    expect(parseScenario({ pages: ['/a'], stages }, 'x.json', { connections: 3 }).stages).toEqual([{ startMs: 0, connections: 3, durationMs: 5_000, amount: null, mix: { scan: 1, enqueue: 0, status: 0, health: 0 } }]);
  });

  it('refuses a run, a stage or a bound of no length, and a protocol-relative page', () => {
    expect(refusal({ pages: ['/a'], duration: '0s' })).toMatch(/: duration: expected a duration above 0/);
    expect(refusal({ pages: ['/a'], stages: [{ connections: 1, duration: 0 }] })).toMatch(/: stages\[0\]\.duration: expected a duration above 0/);
    expect(refusal({ ...base, maxDuration: '0ms' })).toMatch(/: maxDuration: expected a duration above 0/);
    expect(refusal({ ...base, pages: ['//elsewhere.example/x'] })).toMatch(/: pages\[0\]: expected a path on the fixture site/);
 
  });

  it('refuses a target URL with a path, which the requests (to /api/scans and /health at its root) would drop', () => {
    expect(refusal({ ...base, target: 'https://host.example/wcagai' }, 'prefixed.json')).toMatch(/^prefixed\.json: target: expected "self" or an http\(s\) base URL with no path/);
    expect(() => parseScenario(base, 'x.json', { target: 'http://127.0.0.1:8080/wcagai/' })).toThrow(/target: expected "self" or an http\(s\) base URL with no path/);
    for (const target of ['http://127.0.0.1:8080', 'https://wcagai.internal/']) expect(parseScenario({ ...base, target }, 'x.json').target).toBe(target);
  });
});

describe('loadScenario', () => {
  it('names the file for unreadable and invalid JSON files', async () => {
    const bad = join(tmp, 'bad.json');
    await writeFile(bad, '{ "duration": "10s", ');
    await expect(loadScenario(bad)).rejects.toThrow(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
    await expect(loadScenario(join(tmp, 'missing.json'))).rejects.toThrow(/missing\.json: cannot read the scenario: ENOENT/);
    const wrong = join(tmp, 'wrong.json');
    await writeFile(wrong, JSON.stringify({ ...base, connections: 0 }));
    await expect(loadScenario(wrong)).rejects.toThrow(/wrong\.json: connections: expected an integer >= 1/);
  });
});
