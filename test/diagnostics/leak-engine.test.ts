import { describe, expect, it } from 'vitest';
import { checkTargets, defaultWarmup, inconclusive, runLeak, type LeakProbes, type LeakScanner } from '../../src/diagnostics/leak.js';
import { heapChart, leakHtml, leakText } from '../../src/diagnostics/leak-report.js';
import { ANSWERED_LOAD_TIMEOUT } from '../../src/errors/catalogue.js';

const MB = 2 ** 20;

/** A scanner and memory probes that model a heap: each scan leaves `leakPerScan` bytes behind, plus noise. */
function model(leakPerScan: number, failEvery = 0): { scanner: LeakScanner; probes: LeakProbes; gcs: () => number } {
  let scans = 0;
  let gcs = 0;
  const noise = [0.3, -0.2, 0.5, -0.4, 0.1, -0.1, 0.2, -0.3];
  return {
    scanner: {
      scan: async () => {
        scans++;
        return failEvery && scans % failEvery === 0 ? { status: 'error', error: { code: 'NAVIGATION_TIMEOUT' } } : { status: 'ok' };
      },
      browserPid: () => 1234,
    },
    probes: {
      gc: () => {
        gcs++;
      },
      memory: () => ({ heapUsed: 40 * MB + scans * leakPerScan + noise[scans % noise.length]! * MB, external: 2 * MB, rss: 150 * MB }),
      handles: () => 7,
      treeRss: () => 300 * MB,
    },
    gcs: () => gcs,
  };
}

const options = { concurrent: 5, cycles: 60, urls: ['http://a.test/', 'http://b.test/'], maxGrowthBytes: 50 * MB, toleranceBytes: 5 * MB };

describe('runLeak', () => {
  it('passes a flat heap and samples after GC on a schedule', async () => {
    const { scanner, probes, gcs } = model(0);
    const r = await runLeak(scanner, probes, options);
    expect(r.verdict).toBe('pass');
    expect(r.reasons).toEqual([]);
    expect(r.scans).toBe(300);
    expect(r.warmupCycles).toBe(defaultWarmup(60));
    expect(r.samples[0]!.cycle).toBe(6);
    expect(r.samples.at(-1)!.cycle).toBe(60);
    expect(r.samples).toHaveLength(55);
    expect(gcs()).toBe(2 * r.samples.length);
    expect(r.heap.slopeCi[0]!).toBeLessThan(0);
    expect(r.heap.slopeCi[1]!).toBeGreaterThan(0);
    expect(r.chromiumRss).toEqual({ startBytes: 300 * MB, endBytes: 300 * MB, maxBytes: 300 * MB });
    expect(r.handles).toEqual({ start: 7, end: 7, max: 7 });
  });

  it('judges a steady 100 KB per scan a leak by its trend, well before the growth cap', async () => {
    const { scanner, probes } = model(100 * 1024);
    const r = await runLeak(scanner, probes, options);
    expect(r.verdict).toBe('leak');
    expect(r.heap.slopeCi[0]!).toBeGreaterThan(0);
    expect(r.heap.slopeBytesPerCycle).toBeGreaterThan(400 * 1024);
    expect(r.heap.growthBytes).toBeLessThan(50 * MB);
    expect(r.heap.r2).toBeGreaterThan(0.9);
    expect(r.reasons.join()).toMatch(/above the 5\.0 MB tolerance/);
  });

  it('states small sizes in KB in its reasons, not as 0.0 MB', async () => {
    let scans = 0;
    const scanner: LeakScanner = { scan: async () => (scans++, { status: 'ok' }), browserPid: () => null };
    const probes: LeakProbes = { gc: () => undefined, memory: () => ({ heapUsed: 40 * MB + scans * 1024, external: 0, rss: 100 * MB }), handles: () => 1, treeRss: () => 0 };
    const r = await runLeak(scanner, probes, { concurrent: 1, cycles: 10, warmupCycles: 0, urls: ['http://a.test/'], maxGrowthBytes: 2 * 1024, toleranceBytes: 4 * 1024 });
    expect(r.reasons).toEqual([
      'heap grows 1.0 KB/cycle (95% CI 1.0 KB to 1.0 KB), 10.0 KB over the run, above the 4.0 KB tolerance',
      'post-GC heap grew 10.0 KB, above the 2.0 KB maximum',
    ]);
  });

  it('ignores a significant but tiny trend and fails on growth past the cap or too many errors', async () => {
    const tiny = model(512);
    expect((await runLeak(tiny.scanner, tiny.probes, { ...options, toleranceBytes: 5 * MB })).verdict).toBe('pass');
    const big = model(100 * 1024);
    const capped = await runLeak(big.scanner, big.probes, { ...options, toleranceBytes: 1_000 * MB, maxGrowthBytes: 10 * MB });
    expect(capped.reasons).toEqual([expect.stringMatching(/grew .* above the 10\.0 MB maximum/)]);
    const failing = model(0, 5);
    const errors = await runLeak(failing.scanner, failing.probes, options);
    expect(errors.errorRate).toBeCloseTo(0.2, 5);
    expect(errors.errorCodes).toEqual({ NAVIGATION_TIMEOUT: 60 });
    expect(errors.verdict).toBe('leak');
    expect(errors.reasons).toEqual([expect.stringMatching(/20\.0% of scans failed/)]);
  });

  it('takes first and last heap snapshots and stops early when aborted', async () => {
    const { scanner, probes } = model(0);
    const labels: string[] = [];
    const abort = new AbortController();
    const r = await runLeak(scanner, { ...probes, snapshot: (l) => (labels.push(l), `/tmp/${l}.heapsnapshot`) }, {
      ...options,
      onProgress: (p) => p.cycle === 20 && abort.abort(),
      signal: abort.signal,
    });
    expect(labels).toEqual(['first', 'last']);
    expect(r.snapshots).toEqual(['/tmp/first.heapsnapshot', '/tmp/last.heapsnapshot']);
    expect(r.cycles).toBe(20);
    expect(r.samples.at(-1)!.cycle).toBe(20);
  });

  it('has no verdict when stopped before three samples after warm-up, and keeps it when the run was planned that short', async () => {
    const { scanner, probes } = model(0);
    const abort = new AbortController();
    const stopped = await runLeak(scanner, probes, { ...options, cycles: 100, warmupCycles: 10, signal: abort.signal, onProgress: (p) => p.cycle === 3 && abort.abort() });
    expect(stopped.cycles).toBe(3);
    expect(stopped.heap.samples).toBeLessThan(3);
    expect(inconclusive(stopped)).toMatch(/^stopped after 3 of 100 cycles with 1 sample\(s\) after warm-up; 3 are needed/);
    const short = await runLeak(scanner, probes, { ...options, cycles: 2, warmupCycles: 1 });
    expect(short.heap.samples).toBeLessThan(3);
    expect(inconclusive(short)).toBeNull();
    expect(inconclusive(await runLeak(scanner, probes, options))).toBeNull();
  });

  it('reports a run stopped before it could judge as no verdict, not as PASS, in the text, the HTML and the JSON', async () => {
    const { scanner, probes } = model(0);
    const abort = new AbortController();
    const stopped = await runLeak(scanner, probes, { ...options, cycles: 100, warmupCycles: 10, signal: abort.signal, onProgress: (p) => p.cycle === 3 && abort.abort() });
    expect(stopped.inconclusive).toMatch(/^stopped after 3 of 100 cycles/);
    const text = leakText(stopped);
    expect(text).not.toMatch(/PASS/);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^NO VERDICT: stopped after 3 of 100 cycles/);
    const html = leakHtml(stopped);
    expect(html).not.toMatch(/>PASS</);
    expect(html).toMatch(/<h1>wcagai leak: <span class="none">NO VERDICT<\/span><\/h1>/);
    // A complete run keeps its verdict, and says the run could judge.
    const full = await runLeak(scanner, probes, options);
    expect(full.inconclusive).toBeNull();
    expect(leakText(full).trimEnd().split('\n').at(-1)).toBe('PASS: no leak detected');
  });

  it("labels the chart's first and last cycle apart however few samples there are", async () => {
    const { scanner, probes } = model(0);
    const r = await runLeak(scanner, probes, { ...options, cycles: 7, warmupCycles: 3 });
    expect(heapChart(r.samples).trimEnd().split('\n').at(-1)).toMatch(/cycle 3 +7$/);
  });

  it('renders a terminal chart, text and an HTML page with an inline SVG', async () => {
    const { scanner, probes } = model(100 * 1024);
    const r = await runLeak(scanner, probes, { ...options, cycles: 12 });
    const chart = heapChart(r.samples);
    expect(chart.split('\n').length).toBeGreaterThanOrEqual(12);
    expect(chart).toMatch(/\*/);
    expect(leakText(r)).toMatch(/^LEAK: /m);
    const html = leakHtml(r, '2026-01-01T00:00:00.000Z');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toMatch(/<svg [^>]*role="img"/);
    expect(html).toMatch(/<path d="M/);
    expect(html).toContain('LEAK');
  });
});

describe('checkTargets', () => {
  /** A scanner answering each URL as `answers` says (ok when not listed), counting its scans. */
  function answering(answers: Record<string, { code: string; message: string }>): { scanner: LeakScanner; scanned: string[] } {
    const scanned: string[] = [];
    return {
      scanned,
      scanner: {
        scan: async (url) => {
          scanned.push(url);
          const error = answers[url];
          return error ? { status: 'error', error } : { status: 'ok' };
        },
        browserPid: () => null,
      },
    };
  }

  it('scans each distinct URL once and lets a target that answers, even with an error, through', async () => {
    const { scanner, scanned } = answering({ 'http://a.test/500': { code: 'HTTP_SERVER_ERROR', message: 'answered 500' }, 'http://a.test/slow': { code: 'SCAN_TIMEOUT', message: 'scan timed out' } });
    await checkTargets(scanner, ['http://a.test/', 'http://a.test/500', 'http://a.test/', 'http://a.test/slow']);
    expect(scanned.sort()).toEqual(['http://a.test/', 'http://a.test/500', 'http://a.test/slow']);
  });

  it('refuses, naming the first URL in order, when a scan reached nothing of its target', async () => {
    const { scanner } = answering({
      'http://b.test/': { code: 'DNS_FAILURE', message: 'net::ERR_NAME_NOT_RESOLVED at http://b.test/' },
      'http://127.0.0.1:9/': { code: 'CONNECTION_FAILED', message: 'net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/' },
    });
    await expect(checkTargets(scanner, ['http://a.test/', 'http://127.0.0.1:9/', 'http://b.test/'])).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: 'cannot reach http://127.0.0.1:9/: net::ERR_CONNECTION_REFUSED (CONNECTION_FAILED); 1 more of the 3 URLs cannot be reached either; nothing was measured',
    });
  });

  it('refuses a navigation that timed out, naming the URL and the deadline (a host that never answers)', async () => {
    const { scanner } = answering({ 'http://10.255.255.1/': { code: 'NAVIGATION_TIMEOUT', message: 'navigation did not finish within 30000 ms' } });
    await expect(checkTargets(scanner, ['http://a.test/', 'http://10.255.255.1/'])).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: 'cannot reach http://10.255.255.1/: navigation did not finish within 30000 ms (NAVIGATION_TIMEOUT); nothing was measured',
    });
  });

  it('runs a page whose document answered but whose load timed out (an image that never arrives): the target is reachable', async () => {
    const { scanner } = answering({ 'http://a.test/slow-image': { code: 'NAVIGATION_TIMEOUT', message: `${ANSWERED_LOAD_TIMEOUT} within 30000 ms (a subresource still loading)` } });
    await expect(checkTargets(scanner, ['http://a.test/slow-image'])).resolves.toBeUndefined();
  });

  it('says a port the browser refuses is one, naming it', async () => {
    const { scanner } = answering({ 'http://127.0.0.1:10080/': { code: 'CONNECTION_FAILED', message: 'net::ERR_UNSAFE_PORT at http://127.0.0.1:10080/' } });
    await expect(checkTargets(scanner, ['http://127.0.0.1:10080/'])).rejects.toThrow(
      'cannot reach http://127.0.0.1:10080/: port 10080 is one that browsers refuse to connect to (a "bad port" of the Fetch standard): choose another port; nothing was measured',
    );
  });
});
