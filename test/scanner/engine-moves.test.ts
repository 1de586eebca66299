/**
 * The scan engine on pages that leave their document on their own (from their load handler, for
 * a document that is not HTTP) and on a renderer that dies while its page is cleaned: real
 * Chromium, pages served on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { createScanner } from '../../src/scanner/engine.js';
import type { Scanner } from '../../src/scanner/types.js';
import { ENGINE_TEST_CONFIG, NO_ALT_IMG, ok, recordingLogger, ruleIds } from '../support/engine.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';

const CONFIG = ENGINE_TEST_CONFIG;

/** Holds the checks of the page it is in for good: only a document the page moves on to can be scanned. */
const HOLD_CHECKS = `<script>axe.run = () => new Promise(() => {});</script>`;

describe('ScanEngine on pages that leave their document on their own', () => {
  let server: FixtureServer;
  let engine: Scanner;

  beforeAll(async () => {
    server = await startFixtureServer();
    server.html('/static', page('<h1>Static</h1>'));
    engine = await createScanner(CONFIG);
  });

  afterAll(async () => {
    await engine?.close();
    await server?.close();
  });

  it('reports the URL and the status of the document it scanned when the load handler sends the page on', async () => {
    // To a 404 while its own checks are held: the 404 is the only document that can be reported,
    // and it is reported with its own URL.
    server.html('/gone', page('<h1>Gone</h1>'), { status: 404 });
    server.html('/onload-to-404', page('<h1>Moving</h1>', `<script>onload = () => { location.href = '/gone'; };</script>${HOLD_CHECKS}`));
    const gone = await engine.scan(server.url('/onload-to-404'), DEFAULT_SCAN_OPTIONS);
    expect(gone).toMatchObject({ url: server.url('/onload-to-404'), finalUrl: server.url('/gone'), httpStatus: 404, status: 'error', error: { code: 'HTTP_CLIENT_ERROR' } });

    // To a 204, which replaces no document: the page it stays on is scanned, with its own 200.
    server.route('/no-content', (_req, res) => void res.writeHead(204).end());
    server.html('/onload-to-204', page(`<h1>Staying</h1>${NO_ALT_IMG}`, `<script>onload = () => { location.href = '/no-content'; };</script>`));
    const stays = ok(await engine.scan(server.url('/onload-to-204'), DEFAULT_SCAN_OPTIONS));
    expect(server.requestsTo('/no-content')).toHaveLength(1);
    expect(stays).toMatchObject({ finalUrl: server.url('/onload-to-204'), httpStatus: 200 });
    expect(ruleIds(stays)).toEqual(['image-alt']);

    // To a page that loads: that page, with its status.
    server.html('/created', page(`<h1>Here</h1>${NO_ALT_IMG}`), { status: 201 });
    server.html('/onload-to-201', page('<h1>Moving</h1>', `<script>onload = () => { location.href = '/created'; };</script>${HOLD_CHECKS}`));
    const moved = ok(await engine.scan(server.url('/onload-to-201'), DEFAULT_SCAN_OPTIONS));
    expect(moved).toMatchObject({ finalUrl: server.url('/created'), httpStatus: 201 });
    expect(ruleIds(moved)).toEqual(['image-alt']);
  });

  it('ends a page that leaves for about:blank after its load as UNSUPPORTED_SCHEME, not retryable, and keeps its page', async () => {
    server.html('/onload-to-blank', page('<h1>Blank</h1>', `<script>onload = () => { location = 'about:blank'; };</script>${HOLD_CHECKS}`));
    server.html('/checks-to-blank', page('<h1>Blank</h1>', `<script>axe.run = () => { location = 'about:blank'; return new Promise(() => {}); };</script>`));
    const retired = engine.stats().contextsRetired;
    for (const path of ['/onload-to-blank', '/checks-to-blank']) {
      const result = await engine.scan(server.url(path), DEFAULT_SCAN_OPTIONS);
      expect(result, path).toMatchObject({ status: 'error', finalUrl: 'about:blank', httpStatus: null, violations: [], error: { code: 'UNSUPPORTED_SCHEME', retryable: false } });
      expect(result.error?.message).toContain('about:blank');
    }
    // Its page was cleaned and kept, as for a page that answered an error status.
    expect(engine.stats().contextsRetired).toBe(retired);
    ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
  });
});

describe('ScanEngine on a page whose main thread never comes back', () => {
  it('ends in SETTLE_TIMEOUT at the settle deadline, not at the scan deadline asking which document it shows', async () => {
    const server = await startFixtureServer();
    // Settle 1 s (its deadline adds 2 s), the scan 30 s: the busy page answers neither settle nor
    // the question which document it shows.
    const engine = await createScanner({ ...CONFIG, settleMaxMs: 1_000, scanTimeoutMs: 30_000 });
    try {
      // The DOM changes after load, so settle waits out its quiet window (a page that did nothing
      // after load settles at once, maybe before the loop starts, and axe would meet it instead).
      server.html('/busy', page('<h1>Busy</h1>', "<script>onload = () => { document.body.append('.'); setTimeout(() => { for (;;); }, 20); };</script>"));
      const started = performance.now();
      const result = await engine.scan(server.url('/busy'), DEFAULT_SCAN_OPTIONS);
      expect(result).toMatchObject({ status: 'error', finalUrl: server.url('/busy'), httpStatus: 200, error: { code: 'SETTLE_TIMEOUT' } });
      // Well inside the scan deadline: asking the page which document it shows waited it out before.
      expect(performance.now() - started).toBeLessThan(20_000);
    } finally {
      await engine.close();
      await server.close();
    }
  });
});

describe('ScanEngine cleaning a page whose renderer dies', () => {
  it('gives the page up as soon as its renderer dies while it is parked, not at the cleanup deadline', async () => {
    const server = await startFixtureServer();
    const log = recordingLogger();
    // Parking unloads the page: its pagehide handler reports it, then allocates until its renderer
    // runs out of memory (the heap is capped below for this browser only).
    server.route('/parking', (_req, res) => void res.writeHead(204).end());
    server.html(
      '/dies-when-parked',
      page(`<h1>Dies</h1>${NO_ALT_IMG}`, `<script>onpagehide = () => { navigator.sendBeacon('/parking'); const hog = []; for (;;) hog.push(new Array(1e6).fill(Math.random())); };</script>`),
    );
    server.html('/page', page(`<h1>Page</h1>${NO_ALT_IMG}`));
    // Long, so that half of it leaves a loaded machine room; waiting for the park ended at this
    // deadline or at the park's own navigation timeout (8 s), whichever came first.
    const cleanupTimeoutMs = 10_000;
    const engine = await createScanner({ ...CONFIG, cleanupTimeoutMs, extraArgs: ['--js-flags=--max-old-space-size=128'], logger: log.logger });
    try {
      let parked = 0;
      const scan = engine.scan(server.url('/dies-when-parked'), DEFAULT_SCAN_OPTIONS);
      // Bounded: a beacon that never arrived would leave `parked` at 0, which the checks below refuse.
      const watch = (async () => {
        for (const until = performance.now() + 60_000; server.requestsTo('/parking').length === 0 && performance.now() < until; ) await new Promise((r) => setTimeout(r, 10));
        if (server.requestsTo('/parking').length > 0) parked = performance.now();
      })();
      // Its checks were done before the clean: the scan itself stands.
      const result = ok(await scan);
      const ended = performance.now();
      await watch;
      expect(ruleIds(result)).toEqual(['image-alt']);
      const failed = log.records.find((e) => e.event === 'slot.cleanup_failed');
      expect(String(failed?.err)).toContain('page crashed');
      // About a second from the pagehide (most of it the page filling its heap), where waiting for
      // the park would take until a deadline.
      expect(parked).toBeGreaterThan(0);
      expect(ended - parked).toBeLessThan(cleanupTimeoutMs / 2);
      // The page was replaced: the next scan runs on a fresh one, in the same browser.
      expect(ruleIds(ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS)))).toEqual(['image-alt']);
      expect(engine.stats().browserRestarts).toBe(0);
    } finally {
      await engine.close();
      await server.close();
    }
  });
});
