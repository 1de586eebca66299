/**
 * The scan engine against real Chromium and pages served on loopback: isolation between scans,
 * adaptive settle, deadlines, error codes, frames and shadow DOM, options, crash recovery and
 * recycling. No mocks: every page is a real HTTP response from test/support/fixture-server.ts.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS, type PageResult, type ScanOptions } from '../../src/domain/scan.js';
import { tagsFor } from '../../src/domain/wcag.js';
import { candidateStorageKeys, cookieReaches, createScanner, LOAD_STALL_MS } from '../../src/scanner/engine.js';
import type { Scanner } from '../../src/scanner/types.js';
import { ENGINE_TEST_CONFIG, GIF, GIF_URI, NO_ALT_IMG, ok, recordingLogger, ruleIds } from '../support/engine.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { browserTree, isAlive, ourChromiumProcesses, waitForExit } from '../support/processes.js';

const CONFIG = ENGINE_TEST_CONFIG;

/** How long the SPA fixtures' API takes to answer; settle must outwait it. */
const API_DELAY_MS = 800;

function nodesOf(result: PageResult, rule: string) {
  return result.violations.find((v) => v.id === rule)?.nodes ?? [];
}

function opts(overrides: Partial<ScanOptions> = {}): ScanOptions {
  return { ...DEFAULT_SCAN_OPTIONS, ...overrides };
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------------------------
// Isolation fixtures

/**
 * Looks for state left by an earlier scan. When it finds any it adds an <img> without alt, so axe
 * reports image-alt iff state leaked; it then reports what it saw to /iso/report. The page's
 * /iso/gate image is held by the server until that report arrives, so `load` (and the scan) waits
 * for the check to finish.
 */
const DETECT = `
async function detect(page) {
  const found = [];
  if (document.cookie) found.push('cookie=' + document.cookie);
  if (localStorage.length) found.push('localStorage=' + Object.keys(localStorage).join(','));
  if (sessionStorage.length) found.push('sessionStorage=' + Object.keys(sessionStorage).join(','));
  const dbs = await indexedDB.databases();
  if (dbs.length) found.push('indexedDB=' + dbs.map((d) => d.name).join(','));
  document.getElementById('found').textContent = found.join('; ') || 'nothing';
  if (found.length) {
    const img = document.createElement('img');
    img.id = 'leak';
    img.src = '${GIF_URI}';
    document.querySelector('main').append(img);
  }
  await fetch('/iso/report?page=' + page + '&found=' + encodeURIComponent(found.join('; ')));
}`;

const WRITE_STATE = `
async function writeState(tag) {
  document.cookie = 'js' + tag + '=1; path=/; max-age=3600';
  localStorage.setItem('ls' + tag, 'v');
  sessionStorage.setItem('ss' + tag, 'v');
  await new Promise((resolve, reject) => {
    const req = indexedDB.open('db' + tag, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('store').put('v', 'k');
    req.onsuccess = () => resolve(req.result); // the connection stays open, as a real app's would
    req.onerror = () => reject(req.error);
  });
}`;

function isolationPage(name: string, script: string): string {
  return page(`<h1>${name}</h1><p id="found">checking</p><img src="/iso/gate?page=${name}" alt="">`, `<script>${DETECT}${WRITE_STATE}</script>`).replace(
    '</main>',
    `</main><script>${script}</script>`,
  );
}

function installIsolationRoutes(server: FixtureServer): Map<string, string> {
  const reports = new Map<string, string>();
  const gates = new Map<string, () => void>();
  server.route('/iso/report', (req, res) => {
    const q = new URL(req.url ?? '', 'http://x').searchParams;
    const name = q.get('page') ?? '';
    reports.set(name, q.get('found') ?? '');
    res.writeHead(204).end();
    gates.get(name)?.();
  });
  server.route('/iso/gate', (req, res) => {
    const name = new URL(req.url ?? '', 'http://x').searchParams.get('page') ?? '';
    const release = (): void => {
      clearTimeout(timer);
      gates.delete(name);
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(GIF);
    };
    const timer = setTimeout(release, 2_000);
    if (reports.has(name)) release();
    else gates.set(name, release);
  });
  server.html('/iso/writer1', isolationPage('writer1', `writeState('1').then(() => detect('writer1'));`), {
    headers: { 'set-cookie': 'srv1=1; Path=/; Max-Age=3600' },
  });
  for (const name of ['reader1', 'reader2']) server.html(`/iso/${name}`, isolationPage(name, `detect('${name}');`));
  // Keeps writing after the scan's checks are done, until the page is navigated away, and writes
  // again while it is being unloaded (as analytics code does on pagehide).
  server.html(
    '/iso/writer-busy',
    isolationPage(
      'writer-busy',
      `for (const type of ['beforeunload', 'pagehide', 'unload', 'visibilitychange']) {
        addEventListener(type, () => {
          document.cookie = 'on' + type + '=1; path=/';
          localStorage.setItem('on' + type, 'v');
          sessionStorage.setItem('on' + type, 'v');
        });
      }
      writeState('busy').then(() => detect('writer-busy')).then(() => {
        let n = 0;
        setInterval(() => {
          n++;
          document.cookie = 'late' + n + '=1; path=/';
          localStorage.setItem('late' + n, 'v');
          sessionStorage.setItem('late' + n, 'v');
          if (n === 1) indexedDB.open('late-db', 1);
        }, 5);
      });`,
    ),
    { headers: { 'set-cookie': 'srvbusy=1; Path=/' } },
  );
  server.html('/iso/reader-busy', isolationPage('reader-busy', `detect('reader-busy');`));
  server.html('/iso/slow', page('<h1>Slow</h1>'), { delayMs: 1_500 });
  for (const name of ['reader3', 'reader4', 'reader5', 'reader6']) server.html(`/iso/${name}`, isolationPage(name, `detect('${name}');`));
  server.html('/iso/writer-500', isolationPage('writer-500', `writeState('500').then(() => detect('writer-500'));`), {
    status: 500,
    headers: { 'set-cookie': 'srv500=1; Path=/; Max-Age=3600' },
  });
  // Writes and reports, but never finishes loading: its scan ends in NAVIGATION_TIMEOUT.
  server.hang('/iso/never');
  server.html('/iso/writer-hang', isolationPage('writer-hang', `writeState('hang').then(() => detect('writer-hang'));`).replace('</main>', '<img src="/iso/never" alt=""></main>'), {
    headers: { 'set-cookie': 'srvhang=1; Path=/; Max-Age=3600' },
  });
  for (const name of ['reader7', 'reader8', 'reader9']) server.html(`/iso/${name}`, isolationPage(name, `detect('${name}');`));
  // Writes, reports, then keeps its scan open until /iso/hold is released (by the test).
  server.html('/iso/writer-hold', isolationPage('writer-hold', `writeState('hold').then(() => detect('writer-hold')).then(() => fetch('/iso/hold'));`), {
    headers: { 'set-cookie': 'srvhold=1; Path=/; Max-Age=3600' },
  });
  for (const name of ['reader10', 'reader11']) server.html(`/iso/${name}`, isolationPage(name, `detect('${name}');`));
  // Static (nothing left running) but told by its Refresh header to load a writer a second later.
  server.html('/iso/refresher', page('<h1>Refresh</h1><p>Moves on by itself.</p>'), { headers: { refresh: '1; url=/iso/writer-late' } });
  server.html('/iso/writer-late', isolationPage('writer-late', `writeState('late').then(() => detect('writer-late'));`), {
    headers: { 'set-cookie': 'srvlate=1; Path=/; Max-Age=3600' },
  });
  // Runs as a cross-site frame (localhost under a 127.0.0.1 page); reader2 reads back in the same position.
  server.html('/iso/frame-writer', isolationPage('frame-writer', `writeState('frame').then(() => detect('frame-writer'));`));
  return reports;
}

// ---------------------------------------------------------------------------------------------

describe('cookies kept for a scan still running', () => {
  it('are those sent to its hosts: a host\'s own host-only cookies, and domain cookies of the host or a parent', () => {
    const hosts = new Set(['www.shop.test', 'cdn.test']);
    expect(cookieReaches('www.shop.test', hosts)).toBe(true);
    expect(cookieReaches('.shop.test', hosts)).toBe(true);
    expect(cookieReaches('.www.shop.test', hosts)).toBe(true);
    expect(cookieReaches('.CDN.test', hosts)).toBe(true);
    // A parent's host-only cookie, a sibling, a child, or a name that only ends the same way is not sent to these hosts.
    expect(cookieReaches('shop.test', hosts)).toBe(false);
    expect(cookieReaches('api.shop.test', hosts)).toBe(false);
    expect(cookieReaches('.api.shop.test', hosts)).toBe(false);
    expect(cookieReaches('img.cdn.test', hosts)).toBe(false);
    expect(cookieReaches('op.test', hosts)).toBe(false);
    expect(cookieReaches('127.0.0.1', new Set(['localhost']))).toBe(false);
    expect(cookieReaches('localhost', new Set())).toBe(false);
  });
});

describe('storage keys cleared when the browser cannot name a frame\'s', () => {
  it('covers first-party and every partition the top-level site could be', () => {
    // The partitioned form is what Chromium answers for a cross-site frame (see the isolation tests).
    expect(candidateStorageKeys('http://localhost:8080', 'http://127.0.0.1:9000')).toEqual([
      'http://localhost:8080/',
      'http://localhost:8080/^0http://127.0.0.1',
      'http://localhost:8080/^0http://127.0.0.1^31',
    ]);
    const keys = candidateStorageKeys('https://cdn.test', 'https://www.shop.example.co.uk');
    expect(keys[0]).toBe('https://cdn.test/');
    // The registrable domain is one of the host's suffixes; without a public-suffix list all are tried.
    for (const site of ['www.shop.example.co.uk', 'shop.example.co.uk', 'example.co.uk', 'co.uk']) expect(keys).toContain(`https://cdn.test/^0https://${site}`);
    expect(keys).not.toContain('https://cdn.test/^0https://uk');
    expect(candidateStorageKeys('http://[::1]:81', 'http://[::1]:80')).toContain('http://[::1]:81/^0http://[::1]');
    expect(candidateStorageKeys('http://a.test', null)).toEqual(['http://a.test/']);
  });
});

/**
 * A page held in the middle of its scan: it fetches `${base}-hold` and waits until the test
 * releases it, then reports to `${base}-report`; its load waits on the `${base}-gate` image until
 * that report came, so its scan ends only after the report.
 */
function heldPage(server: FixtureServer, base: string) {
  let holdArrived: () => void = () => undefined;
  const holding = new Promise<void>((resolve) => (holdArrived = resolve));
  let releaseHold: () => void = () => undefined;
  let openGate: () => void = () => undefined;
  const held = {
    /** The report's query, and the cookie header it came with. */
    report: null as URLSearchParams | null,
    reportCookie: undefined as string | undefined,
    gate: `<img src="${base}-gate" alt="">`,
    /** Resolves once the page waits on its hold. */
    holding: () => Promise.race([holding, new Promise((_, reject) => setTimeout(() => reject(new Error(`${base}: the page never asked for its hold`)), 10_000))]),
    release: () => releaseHold(),
  };
  server.route(`${base}-hold`, (_req, res) => {
    releaseHold = () => void (res.headersSent || res.writeHead(204).end());
    holdArrived();
  });
  server.route(`${base}-report`, (req, res) => {
    held.report = new URL(req.url ?? '', 'http://x').searchParams;
    held.reportCookie = req.headers.cookie;
    res.writeHead(204).end();
    openGate();
  });
  server.route(`${base}-gate`, (_req, res) => {
    openGate = () => void (res.headersSent || res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(GIF));
    if (held.report !== null) openGate();
  });
  return held;
}

describe('ScanEngine on loopback pages', () => {
  let server: FixtureServer;
  let engine: Scanner;
  let reports: Map<string, string>;
  const log = recordingLogger();

  beforeAll(async () => {
    server = await startFixtureServer();
    reports = installIsolationRoutes(server);

    server.html('/static', page(`<h1>Static</h1><p>Nothing happens here after load.</p>`));
    server.html(
      '/spa',
      page(
        `<h1>SPA</h1><div id="app">loading</div>`,
        `<script>addEventListener('load', () => {
          fetch('/api/data').then((r) => r.json()).then((d) => {
            document.getElementById('app').innerHTML = d.html;
          });
        });</script>`,
      ),
    );
    server.body('/api/data', 'application/json', JSON.stringify({ html: `<p>Loaded</p>${NO_ALT_IMG}` }), { delayMs: API_DELAY_MS });
    // Headers at once, the body half a second later: a slow or streamed API answer.
    server.html(
      '/spa-slow-body',
      page(
        `<h1>SPA</h1><div id="app">loading</div>`,
        `<script>addEventListener('load', () => {
          fetch('/api/slow-body').then((r) => r.json()).then((d) => {
            document.getElementById('app').innerHTML = d.html;
          });
        });</script>`,
      ),
    );
    server.route('/api/slow-body', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.flushHeaders();
      setTimeout(() => res.end(JSON.stringify({ html: `<p>Loaded</p>${NO_ALT_IMG}` })), API_DELAY_MS);
    });
    server.html(
      '/spa-xhr',
      page(
        `<h1>SPA</h1><div id="app">loading</div>`,
        `<script>addEventListener('load', () => {
          const xhr = new XMLHttpRequest();
          xhr.open('GET', '/api/data');
          xhr.onload = () => { document.getElementById('app').innerHTML = JSON.parse(xhr.responseText).html; };
          xhr.send();
        });</script>`,
      ),
    );

    server.hang('/hang');
    server.html('/hang-frame', page(`<h1>A frame that never arrives</h1>${NO_ALT_IMG}<iframe title="stuck" src="/hang"></iframe>`));
    server.html('/hang-image', page(`<h1>Never loads</h1><img src="/hang" alt="stuck">`));
    server.html('/not-found-page', page('<h1>Gone</h1>'), { status: 404 });
    server.html('/server-error', page('<h1>Broken</h1>'), { status: 500 });
    server.body('/doc.pdf', 'application/pdf', '%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    server.body('/notes.txt', 'text/plain; charset=utf-8', 'just text, <img src=x> is not markup here');

    server.html('/frame-inner', page(`<h1>Inner</h1>${NO_ALT_IMG}`));
    server.html(
      '/frames',
      page(
        `<h1>Frames and shadow DOM</h1>
        <iframe id="same" title="same origin" src="/frame-inner"></iframe>
        <iframe id="cross" title="cross origin" src="${server.url('/frame-inner', 'localhost')}"></iframe>
        <x-widget></x-widget>`,
        `<script>customElements.define('x-widget', class extends HTMLElement {
          constructor() { super(); this.attachShadow({ mode: 'open' }).innerHTML = '<div class="inside"><button id="nameless"></button></div>'; }
        });</script>`,
      ),
    );

    server.html(
      '/two-images',
      page(`<h1>Images</h1><div id="a"><img id="img-a" src="${GIF_URI}"></div><div id="b"><img id="img-b" src="${GIF_URI}"><button></button></div>`),
    );
    // #767676 on white is 4.54:1: passes AA (4.5:1) and fails AAA (7:1) for normal text.
    server.html('/contrast', page(`<h1>Contrast</h1><p style="color:#767676;background:#fff;font-size:14px">Grey but AA text</p>`));

    engine = await createScanner({ ...CONFIG, logger: log.logger });
  });

  afterAll(async () => {
    await engine?.close();
    await server?.close();
  });

  describe('isolation between scans on one reused page', () => {
    it('leaves no cookie, localStorage, sessionStorage or IndexedDB for the next scan of the same origin', async () => {
      const writer = ok(await engine.scan(server.url('/iso/writer1'), DEFAULT_SCAN_OPTIONS));
      // The writer really stored everything, and its own check (the detector) saw it.
      const seen = reports.get('writer1') ?? '';
      expect(seen).toMatch(/cookie=.*srv1=1/);
      expect(seen).toMatch(/cookie=.*js1=1/);
      expect(seen).toContain('localStorage=ls1');
      expect(seen).toContain('sessionStorage=ss1');
      expect(seen).toContain('indexedDB=db1');
      expect(ruleIds(writer)).toContain('image-alt');

      const before = server.requests.length;
      const reader = ok(await engine.scan(server.url('/iso/reader1'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('reader1')).toBe('');
      expect(ruleIds(reader)).not.toContain('image-alt');
      const readerRequests = server.requests.slice(before);
      expect(readerRequests.map((r) => r.path)).toEqual(expect.arrayContaining(['/iso/reader1', '/iso/gate', '/iso/report']));
      for (const r of readerRequests) expect(r.headers.cookie, `${r.url} carried a cookie`).toBeUndefined();
      // The reader really ran on the writer's page and context: one browser, no slot thrown away.
      expect(engine.stats().browserRestarts).toBe(0);
      expect(log.events.filter((e) => e === 'browser.launch')).toHaveLength(1);
      expect(log.events).not.toContain('slot.cleanup_failed');
      expect(log.events).not.toContain('scan.error');
    });

    it('also drops state a page writes after its checks: on timers and while it unloads', async () => {
      ok(await engine.scan(server.url('/iso/writer-busy'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('writer-busy')).toContain('localStorage=lsbusy');
      const before = server.requests.length;
      const reader = ok(await engine.scan(server.url('/iso/reader-busy'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('reader-busy')).toBe('');
      expect(log.events).not.toContain('slot.cleanup_failed');
      expect(ruleIds(reader)).not.toContain('image-alt');
      for (const r of server.requests.slice(before)) expect(r.headers.cookie, `${r.url} carried a cookie`).toBeUndefined();
    });

    it('loads the page again for a URL that differs from the last scan\'s only in its #fragment, instead of scanning the old document', async () => {
      let served = 0;
      // The first answer has an image without alt text; every later one is fixed.
      server.route('/changing', (_req, res) => {
        served++;
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page(served === 1 ? `<h1>Before</h1>${NO_ALT_IMG}` : '<h1>After</h1>'));
      });
      const first = ok(await engine.scan(`${server.url('/changing')}#a`, DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(first)).toContain('image-alt');
      const second = ok(await engine.scan(`${server.url('/changing')}#b`, DEFAULT_SCAN_OPTIONS));
      expect(served).toBe(2);
      expect(second.httpStatus).toBe(200);
      expect(ruleIds(second)).not.toContain('image-alt');
    });

    it('parks a page whose Refresh header would load another page after the scan: nothing it loads writes after the clean', async () => {
      ok(await engine.scan(server.url('/iso/refresher'), DEFAULT_SCAN_OPTIONS));
      // Past the refresh delay: an idle page left on the document would have loaded the writer by now.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(server.requestsTo('/iso/writer-late')).toHaveLength(0);
      ok(await engine.scan(server.url('/iso/reader11'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('reader11')).toBe('');
    });

    it('answers dialogs: an alert() while loading does not hold the scan, a beforeunload prompt does not hold the clean', async () => {
      server.html('/alerting', page(`<h1>Alert</h1>${NO_ALT_IMG}`, `<script>alert('hello'); confirm('sure?');</script>`));
      // Kept live by a timer (so its page is parked after the scan), and asks before it is left.
      server.html(
        '/unload-prompt',
        page('<h1>Unsaved</h1>', `<script>addEventListener('beforeunload', (e) => { e.preventDefault(); e.returnValue = 'unsaved'; return 'unsaved'; }); setInterval(() => {}, 50);</script>`),
      );
      const retired = engine.stats().contextsRetired;
      const started = Date.now();
      const alerted = ok(await engine.scan(server.url('/alerting'), DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(alerted)).toContain('image-alt');
      expect(Date.now() - started).toBeLessThan(CONFIG.navigationTimeoutMs);
      const events = log.events.length;
      ok(await engine.scan(server.url('/unload-prompt'), DEFAULT_SCAN_OPTIONS));
      ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
      expect(log.events.slice(events)).not.toContain('slot.cleanup_failed');
      expect(engine.stats().contextsRetired).toBe(retired);
    });

    it('closes windows a page opens: they neither keep running after the scan nor navigate its page later', async () => {
      server.html('/popup-opener', page('<h1>Opener</h1>', `<script>window.open('/popup-child', 'child');</script>`));
      server.html(
        '/popup-child',
        page('<h1>Child</h1>', `<script>setInterval(() => fetch('/popup-tick'), 100); setTimeout(() => { opener.location = '/popup-evil'; }, 1500);</script>`),
      );
      ok(await engine.scan(server.url('/popup-opener'), DEFAULT_SCAN_OPTIONS));
      const ticks = server.requestsTo('/popup-tick').length;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(server.requestsTo('/popup-tick')).toHaveLength(ticks);
      expect(server.requestsTo('/popup-evil')).toHaveLength(0);
      const next = ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
      expect(next.finalUrl).toBe(server.url('/static'));
    });

    it('opens no window a page asks for: nothing of another site it would load is left for the next scan of that site', async () => {
      server.html('/iso/reader12', isolationPage('reader12', `detect('reader12');`));
      server.html('/iso/popup-writer', isolationPage('popup-writer', `writeState('popup').then(() => detect('popup-writer'));`));
      const target = server.url('/iso/popup-writer', 'localhost');
      server.html(
        '/popup-other-site',
        page('<h1>Opener</h1>', `<script>window.open('${target}', 'w'); window.open('${target}?noopener', '_blank', 'noopener'); const a = document.createElement('a'); a.href = '${target}?link'; a.target = '_blank'; document.body.append(a); a.click();</script>`),
      );
      ok(await engine.scan(server.url('/popup-other-site'), DEFAULT_SCAN_OPTIONS));
      ok(await engine.scan(server.url('/iso/reader12', 'localhost'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('reader12')).toBe('');
      expect(server.requestsTo('/iso/popup-writer')).toEqual([]);
    });

    it('does not start a scan cancelled while it waited for a page, and keeps the page', async () => {
      const before = server.requests.length;
      const retired = engine.stats().contextsRetired;
      const result = await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS, { signal: AbortSignal.abort() });
      expect(result.error).toMatchObject({ code: 'SCAN_ABORTED', retryable: true });
      expect(server.requests.length).toBe(before);
      expect(engine.stats().contextsRetired).toBe(retired);
      ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
    });

    it('drops the (partitioned) state of a cross-origin frame too', async () => {
      // Both top-level pages are on 127.0.0.1 and frame localhost, so the frames share one storage partition.
      server.html('/iso/host-writer', page(`<h1>Host</h1><iframe title="writer" src="${server.url('/iso/frame-writer', 'localhost')}"></iframe>`));
      server.html('/iso/host-reader', page(`<h1>Host</h1><iframe id="reader" title="reader" src="${server.url('/iso/reader2', 'localhost')}"></iframe>`));
      const writer = ok(await engine.scan(server.url('/iso/host-writer'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('frame-writer')).toContain('localStorage=lsframe');
      expect(reports.get('frame-writer')).toContain('indexedDB=dbframe');
      // The detector inside the frame is seen by the scan of the top page.
      expect(nodesOf(writer, 'image-alt').map((n) => n.target)).toEqual([['iframe', '#leak']]);

      const before = server.requests.length;
      const reader = ok(await engine.scan(server.url('/iso/host-reader'), DEFAULT_SCAN_OPTIONS));
      expect(reports.get('reader2')).toBe('');
      expect(log.events).not.toContain('slot.cleanup_failed');
      expect(ruleIds(reader)).not.toContain('image-alt');
      for (const r of server.requests.slice(before)) expect(r.headers.cookie, `${r.url} carried a cookie`).toBeUndefined();
    });
  });

  describe('isolation with several pages in one browser context (the default)', () => {
    /** Scans the readers at once: each must find no state, and none of their requests carry a cookie. */
    async function readersSeeNothing(scanner: Scanner, names: string[]): Promise<void> {
      const before = server.requests.length;
      (await Promise.all(names.map((name) => scanner.scan(server.url(`/iso/${name}`), DEFAULT_SCAN_OPTIONS)))).forEach(ok);
      for (const name of names) expect(reports.get(name), name).toBe('');
      // The failed page's own late requests (its favicon) still carry its cookies: only the readers' count.
      const readerRequests = server.requests.slice(before).filter((r) => names.some((name) => r.url.includes(name)));
      expect(readerRequests.length).toBeGreaterThanOrEqual(3 * names.length);
      for (const r of readerRequests) expect(r.headers.cookie, `${r.url} carried a cookie`).toBeUndefined();
    }

    it('clears for every page: a scan on the other page after the writer finished sees nothing', async () => {
      const two = await createScanner({ ...CONFIG, concurrency: 2 });
      try {
        // The slow scan holds one page while the writer runs on the other; given back last, the
        // slow scan's page is the one the reader gets: a page that was open while the writer wrote.
        const slow = two.scan(server.url('/iso/slow'), DEFAULT_SCAN_OPTIONS);
        ok(await two.scan(server.url('/iso/writer1'), DEFAULT_SCAN_OPTIONS));
        expect(reports.get('writer1')).toContain('localStorage=ls1');
        ok(await slow);
        const before = server.requests.length;
        ok(await two.scan(server.url('/iso/reader3'), DEFAULT_SCAN_OPTIONS));
        expect(reports.get('reader3')).toBe('');
        for (const r of server.requests.slice(before)) expect(r.headers.cookie, `${r.url} carried a cookie`).toBeUndefined();
        expect(two.stats()).toMatchObject({ browserRestarts: 0, contextsRetired: 0 });
      } finally {
        await two.close();
      }
    });

    it('cleans and keeps the page of a scan that answered an error status: the next scans see nothing, no context retired', async () => {
      const two = await createScanner({ ...CONFIG, concurrency: 2 });
      try {
        const failed = await two.scan(server.url('/iso/writer-500'), DEFAULT_SCAN_OPTIONS);
        expect(failed.error?.code).toBe('HTTP_SERVER_ERROR');
        expect(reports.get('writer-500')).toContain('localStorage=ls500');
        await readersSeeNothing(two, ['reader4', 'reader5']);
        expect(two.stats()).toMatchObject({ contextsRetired: 0, browserRestarts: 0 });
      } finally {
        await two.close();
      }
    });

    it('retires the context of a scan that timed out (its state was never cleared): the next scans start in a fresh one', async () => {
      const two = await createScanner({ ...CONFIG, concurrency: 2, navigationTimeoutMs: 3_000 });
      try {
        const failed = await two.scan(server.url('/iso/writer-hang'), DEFAULT_SCAN_OPTIONS);
        expect(failed.error?.code).toBe('NAVIGATION_TIMEOUT');
        // Its document answered: only an image kept the load from finishing (a host that never answers says otherwise).
        expect(failed.error?.message).toMatch(/^the document answered, but its load did not finish within 3000 ms/);
        expect(reports.get('writer-hang')).toContain('localStorage=lshang');
        await readersSeeNothing(two, ['reader7', 'reader8']);
        expect(two.stats().contextsRetired).toBe(1);
      } finally {
        await two.close();
      }
    });

    it('shared: a scan finishing beside a scan of another site leaves that scan\'s cookies alone; the last to finish clears them', async () => {
      const two = await createScanner({ ...CONFIG, concurrency: 2 });
      // The keeper (on localhost) gets a cookie from its response and one from its script, then
      // waits while a scan of 127.0.0.1 runs and is cleaned; then it reports the cookies it still has.
      const keeper = heldPage(server, '/iso/keep');
      server.html(
        '/iso/keeper',
        page(
          `<h1>Keeper</h1>${keeper.gate}`,
          `<script>document.cookie = 'jskeep=1; path=/; max-age=3600';
          fetch('/iso/keep-hold').then(() => fetch('/iso/keep-report?found=' + encodeURIComponent(document.cookie)));</script>`,
        ),
        { headers: { 'set-cookie': 'srvkeep=1; Path=/; Max-Age=3600' } },
      );
      try {
        const scan = two.scan(server.url('/iso/keeper', 'localhost'), DEFAULT_SCAN_OPTIONS);
        await keeper.holding();
        ok(await two.scan(server.url('/contrast'), DEFAULT_SCAN_OPTIONS));
        keeper.release();
        ok(await scan);
        const found = keeper.report?.get('found');
        expect(found).toContain('srvkeep=1');
        expect(found).toContain('jskeep=1');
        expect(keeper.reportCookie).toContain('srvkeep=1');
        // The keeper finished last, alone in the context: nothing of it is left for the next scan of its host.
        const before = server.requests.length;
        ok(await two.scan(server.url('/iso/reader9', 'localhost'), DEFAULT_SCAN_OPTIONS));
        expect(reports.get('reader9')).toBe('');
        for (const r of server.requests.slice(before)) expect(r.headers.cookie, `${r.url} carried a cookie`).toBeUndefined();
        expect(two.stats()).toMatchObject({ browserRestarts: 0, contextsRetired: 0 });
      } finally {
        keeper.release();
        await two.close();
      }
    });

    it('shared: a scan finishing beside a scan of the same site leaves that scan\'s localStorage and IndexedDB alone; the last to finish clears them', async () => {
      const two = await createScanner({ ...CONFIG, concurrency: 2 });
      // The app stores a value and keeps an IndexedDB connection open (noting if the browser closes
      // it), waits while another page of its origin is scanned and cleaned, then reports what it still has.
      const app = heldPage(server, '/iso/app');
      server.html(
        '/iso/app',
        page(
          `<h1>App</h1>${app.gate}`,
          `<script>
          let closed = 'no';
          localStorage.setItem('lsapp', 'v');
          const open = indexedDB.open('dbapp', 1);
          open.onupgradeneeded = () => open.result.createObjectStore('store').put('v', 'k');
          open.onsuccess = () => {
            open.result.onclose = () => (closed = 'yes');
            fetch('/iso/app-hold').then(async () => {
              const names = (await indexedDB.databases()).map((d) => d.name).join(',');
              fetch('/iso/app-report?ls=' + (localStorage.getItem('lsapp') ?? '') + '&closed=' + closed + '&dbs=' + names);
            });
          };
          </script>`,
        ),
      );
      try {
        const scan = two.scan(server.url('/iso/app'), DEFAULT_SCAN_OPTIONS);
        await app.holding();
        ok(await two.scan(server.url('/contrast'), DEFAULT_SCAN_OPTIONS));
        app.release();
        ok(await scan);
        expect(app.report?.get('ls')).toBe('v');
        expect(app.report?.get('closed')).toBe('no');
        expect(app.report?.get('dbs')).toBe('dbapp');
        // The app finished last, alone in the context: nothing of it is left for the next scan of its origin.
        ok(await two.scan(server.url('/iso/reader10'), DEFAULT_SCAN_OPTIONS));
        expect(reports.get('reader10')).toBe('');
        expect(two.stats()).toMatchObject({ browserRestarts: 0, contextsRetired: 0 });
      } finally {
        app.release();
        await two.close();
      }
    });

    for (const contextMode of ['shared', 'per-slot'] as const) {
      it(`${contextMode}: a scan running beside a writer ${contextMode === 'shared' ? 'may see its cookies (same context)' : 'sees none of its state'}`, async () => {
        const two = await createScanner({ ...CONFIG, concurrency: 2, contextMode });
        let release: () => void = () => undefined;
        server.route('/iso/hold', (_req, res) => {
          release = () => void (res.headersSent || res.writeHead(204).end());
        });
        try {
          reports.delete('writer-hold');
          const writer = two.scan(server.url('/iso/writer-hold'), DEFAULT_SCAN_OPTIONS);
          const until = Date.now() + 8_000;
          while (!reports.has('writer-hold') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
          expect(reports.get('writer-hold')).toContain('localStorage=lshold');
          const reader = contextMode === 'shared' ? 'reader6' : 'reader5';
          reports.delete(reader);
          ok(await two.scan(server.url(`/iso/${reader}`), DEFAULT_SCAN_OPTIONS));
          release();
          ok(await writer);
          if (contextMode === 'per-slot') expect(reports.get(reader)).toBe('');
          else expect(reports.get(reader)).toMatch(/cookie=.*srvhold=1/);
        } finally {
          release();
          await two.close();
        }
      });
    }
  });

  describe('adaptive settle', () => {
    it('waits for a fetch started on load and scans what it rendered', async () => {
      const result = ok(await engine.scan(server.url('/spa'), DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(result)).toContain('image-alt');
      expect(nodesOf(result, 'image-alt')).toHaveLength(1);
      expect(nodesOf(result, 'image-alt')[0]?.html).toContain('data:image/gif');
      // Measured from when load fired, so a little less than the API's delay; the finding is the proof.
      expect(result.timings.settleMs).toBeGreaterThanOrEqual(API_DELAY_MS / 2);
      expect(result.timings.settleMs).toBeLessThan(CONFIG.settleMaxMs);
    });

    it('waits for an XMLHttpRequest started on load', async () => {
      const result = ok(await engine.scan(server.url('/spa-xhr'), DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(result)).toContain('image-alt');
      expect(result.timings.settleMs).toBeGreaterThanOrEqual(API_DELAY_MS / 2);
    });

    it('waits for a response body that arrives after its headers', async () => {
      const result = ok(await engine.scan(server.url('/spa-slow-body'), DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(result)).toContain('image-alt');
      expect(result.timings.settleMs).toBeGreaterThanOrEqual(API_DELAY_MS / 2);
    });

    it('settles a static page at once', async () => {
      const result = ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
      expect(result.violations).toEqual([]);
      // Far below the settle ceiling: nothing was pending, so settle did not wait for quiet to time out.
      expect(result.timings.settleMs).toBeLessThan(CONFIG.settleMaxMs / 2);
      expect(result.finalUrl).toBe(server.url('/static'));
      expect(result.httpStatus).toBe(200);
    });
  });

  describe('stalled loads', () => {
    it('navigates a third time when the frame failed to commit twice and the deadline has room: the page is scanned with its frame', async () => {
      const recorded = recordingLogger();
      // The frame's first two loads never answer; the third does, with an image without alt text.
      server.route('/frame-third-time', (_req, res) => {
        if (server.requestsTo('/frame-third-time').length <= 2) return;
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(page(`<h1>Framed</h1>${NO_ALT_IMG}`));
      });
      server.html('/stalls-twice', page('<h1>A frame that comes on the third load</h1><iframe title="late" src="/frame-third-time"></iframe>'));
      const patient = await createScanner({ ...CONFIG, navigationTimeoutMs: 5 * LOAD_STALL_MS, scanTimeoutMs: 7 * LOAD_STALL_MS, logger: recorded.logger });
      try {
        const result = ok(await patient.scan(server.url('/stalls-twice'), DEFAULT_SCAN_OPTIONS));
        expect(recorded.events.filter((e) => e === 'navigation.load_stalled')).toHaveLength(2);
        expect(server.requestsTo('/frame-third-time')).toHaveLength(3);
        // The violation is the frame's: it was scanned with its content.
        expect(ruleIds(result)).toContain('image-alt');
      } finally {
        await patient.close();
      }
    });

    it('scans a page whose only unfinished request is a child frame after two stalled loads, not as a timeout', async () => {
      const recorded = recordingLogger();
      // Two stalls take 2 × LOAD_STALL_MS: the deadlines leave room for both.
      const stalling = await createScanner({ ...CONFIG, navigationTimeoutMs: 3 * LOAD_STALL_MS, scanTimeoutMs: 5 * LOAD_STALL_MS, logger: recorded.logger });
      try {
        const started = performance.now();
        const result = ok(await stalling.scan(server.url('/hang-frame'), DEFAULT_SCAN_OPTIONS));
        expect(performance.now() - started).toBeGreaterThanOrEqual(2 * LOAD_STALL_MS);
        expect(ruleIds(result)).toContain('image-alt');
        expect(recorded.events.filter((e) => e === 'navigation.load_stalled')).toHaveLength(2);
      } finally {
        await stalling.close();
      }
    });
  });

  describe('pages that navigate after their load', () => {
    /** Holds the checks of the page it is in until the page has moved on, so the move always comes during them. */
    const HOLD_CHECKS = `<script>axe.run = () => new Promise(() => {});</script>`;
    /** A script that moves the page on to `path` once its checks start (as a late redirect would, but always then). */
    const moveDuringChecks = (path: string) => `<script>axe.run = () => { location.href = '${path}'; return new Promise(() => {}); };</script>`;

    it('scans the document a meta refresh or a script sends the page to after its load, with its own status and URL', async () => {
      server.html('/moved-target', page(`<h1>Moved here</h1>${NO_ALT_IMG}`));
      server.html('/meta-refresh', page('<h1>Moving</h1><meta http-equiv="refresh" content="0; url=/moved-target">', HOLD_CHECKS));
      server.html('/script-redirect', page('<h1>Moving</h1>', moveDuringChecks('/moved-target')));
      const retired = engine.stats().contextsRetired;
      for (const path of ['/meta-refresh', '/script-redirect']) {
        const result = ok(await engine.scan(server.url(path), DEFAULT_SCAN_OPTIONS));
        expect(result.finalUrl, path).toBe(server.url('/moved-target'));
        expect(result.httpStatus, path).toBe(200);
        expect(ruleIds(result), path).toEqual(['image-alt']);
      }
      server.html('/moved-gone', page('<h1>Gone</h1>'), { status: 404 });
      server.html('/script-to-404', page('<h1>Moving</h1>', moveDuringChecks('/moved-gone')));
      const gone = await engine.scan(server.url('/script-to-404'), DEFAULT_SCAN_OPTIONS);
      expect(gone).toMatchObject({ status: 'error', httpStatus: 404, finalUrl: server.url('/moved-gone'), error: { code: 'HTTP_CLIENT_ERROR', retryable: false } });
      // Moved on to a site that cannot be reached: the browser's own error page is not scanned as the site.
      server.html('/script-to-nowhere', page('<h1>Moving</h1>', moveDuringChecks(`http://127.0.0.1:${await closedPort()}/`)));
      const nowhere = await engine.scan(server.url('/script-to-nowhere'), DEFAULT_SCAN_OPTIONS);
      expect(nowhere).toMatchObject({ status: 'error', violations: [], error: { code: 'CONNECTION_FAILED', retryable: true } });
      expect(engine.stats().contextsRetired).toBe(retired);
    });

    it('gives up on a page that keeps reloading itself after a few documents', async () => {
      server.html('/reloads', page('<h1>Again</h1>', `<script>axe.run = () => { location.reload(); return new Promise(() => {}); };</script>`));
      const before = server.requestsTo('/reloads').length;
      const result = await engine.scan(server.url('/reloads'), DEFAULT_SCAN_OPTIONS);
      expect(result.error).toMatchObject({ code: 'AXE_FAILED', retryable: true });
      expect(result.error?.message).toContain('navigated away');
      expect(server.requestsTo('/reloads').length - before).toBeLessThanOrEqual(6);
      ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
    });
  });

  describe('deadlines and error codes', () => {
    for (const path of ['/hang', '/hang-image']) {
      it(`ends a page that never finishes loading (${path}) within the deadline, and stays usable`, async () => {
        const started = performance.now();
        const result = await engine.scan(server.url(path), DEFAULT_SCAN_OPTIONS);
        const elapsed = performance.now() - started;
        expect(result.status).toBe('error');
        expect(['NAVIGATION_TIMEOUT', 'SCAN_TIMEOUT']).toContain(result.error?.code);
        expect(result.error?.retryable).toBe(true);
        expect(result.violations).toEqual([]);
        expect(elapsed).toBeGreaterThanOrEqual(CONFIG.navigationTimeoutMs - 100);
        expect(elapsed).toBeLessThan(CONFIG.scanTimeoutMs + 2_000);
        ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
      });
    }

    it('reports a 404 document as HTTP_CLIENT_ERROR, not retryable', async () => {
      const result = await engine.scan(server.url('/not-found-page'), DEFAULT_SCAN_OPTIONS);
      expect(result).toMatchObject({ status: 'error', httpStatus: 404, error: { code: 'HTTP_CLIENT_ERROR', retryable: false }, violations: [] });
    });

    it('reports a 500 document as HTTP_SERVER_ERROR, retryable', async () => {
      const result = await engine.scan(server.url('/server-error'), DEFAULT_SCAN_OPTIONS);
      expect(result).toMatchObject({ status: 'error', httpStatus: 500, error: { code: 'HTTP_SERVER_ERROR', retryable: true } });
    });

    it('refuses a PDF and a text/plain document as NON_HTML_DOCUMENT', async () => {
      for (const path of ['/doc.pdf', '/notes.txt']) {
        const result = await engine.scan(server.url(path), DEFAULT_SCAN_OPTIONS);
        expect(result.status, path).toBe('error');
        expect(result.error, path).toMatchObject({ code: 'NON_HTML_DOCUMENT', retryable: false });
      }
      ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
    });

    it('reports a refused connection as CONNECTION_FAILED, retryable', async () => {
      const port = await closedPort();
      const started = performance.now();
      const result = await engine.scan(`http://127.0.0.1:${port}/`, DEFAULT_SCAN_OPTIONS);
      expect(result).toMatchObject({ status: 'error', httpStatus: null, error: { code: 'CONNECTION_FAILED', retryable: true } });
      expect(performance.now() - started).toBeLessThan(CONFIG.navigationTimeoutMs);
    });

    it('refuses unknown rule ids as INVALID_OPTIONS before loading anything', async () => {
      const before = server.requests.length;
      for (const field of ['rules', 'disableRules'] as const) {
        const result = await engine.scan(server.url('/static'), opts({ [field]: ['image-alt', 'no-such-rule'] }));
        expect(result.status).toBe('error');
        expect(result.error).toMatchObject({ code: 'INVALID_OPTIONS', retryable: false });
        expect(result.error?.message).toContain('no-such-rule');
      }
      expect(server.requests.length).toBe(before);
    });
  });

  describe('frames and shadow DOM', () => {
    it('finds violations in same-origin and cross-origin iframes and in open shadow roots, with their paths', async () => {
      const result = ok(await engine.scan(server.url('/frames'), DEFAULT_SCAN_OPTIONS));
      const images = nodesOf(result, 'image-alt').map((n) => n.target);
      expect(images).toHaveLength(2);
      expect(images).toEqual(expect.arrayContaining([['#same', 'img'], ['#cross', 'img']]));
      const buttons = nodesOf(result, 'button-name').map((n) => n.target);
      expect(buttons).toHaveLength(1);
      expect(buttons[0]).toHaveLength(1);
      expect(buttons[0]![0]).toMatch(/^x-widget >>> .*#nameless/);
      // Every finding has a distinct fingerprint.
      const fingerprints = result.violations.flatMap((v) => v.nodes.map((n) => n.fingerprint));
      expect(new Set(fingerprints).size).toBe(fingerprints.length);
    });
  });

  describe('rule manifest and options', () => {
    it('records the axe version, the tags of the WCAG level and the rules that ran', async () => {
      const result = ok(await engine.scan(server.url('/two-images'), DEFAULT_SCAN_OPTIONS));
      expect(result.rules.axeVersion).toMatch(/^4\.11\.\d+$/);
      expect(result.rules.tags).toEqual(tagsFor(DEFAULT_SCAN_OPTIONS));
      expect(result.rules.ran.length).toBeGreaterThan(20);
      expect(result.rules.ran).toEqual([...result.rules.ran].sort());
      expect(result.rules.ran).toEqual(expect.arrayContaining(['image-alt', 'button-name', 'color-contrast', 'target-size']));
      expect(result.rules.ran).not.toContain('color-contrast-enhanced');
      expect(ruleIds(result)).toEqual(['button-name', 'image-alt']);
      for (const v of result.violations) expect(v.wcag.length).toBeGreaterThan(0);
      expect(nodesOf(result, 'image-alt').find((n) => n.target[0] === '#img-a')?.html).toContain('id="img-a"');
    });

    it('runs only the named rules', async () => {
      const result = ok(await engine.scan(server.url('/two-images'), opts({ rules: ['image-alt'] })));
      expect(result.rules.ran).toEqual(['image-alt']);
      expect(ruleIds(result)).toEqual(['image-alt']);
      expect(nodesOf(result, 'image-alt')).toHaveLength(2);
    });

    it('leaves out disabled rules', async () => {
      const result = ok(await engine.scan(server.url('/two-images'), opts({ disableRules: ['image-alt'] })));
      expect(result.rules.ran).not.toContain('image-alt');
      expect(result.rules.ran).toContain('button-name');
      expect(ruleIds(result)).toEqual(['button-name']);
    });

    it('limits the nodes to include and exclude selectors', async () => {
      const included = ok(await engine.scan(server.url('/two-images'), opts({ include: ['#a'] })));
      expect(ruleIds(included)).toEqual(['image-alt']);
      expect(nodesOf(included, 'image-alt').map((n) => n.target)).toEqual([['#img-a']]);

      const excluded = ok(await engine.scan(server.url('/two-images'), opts({ exclude: ['#a'] })));
      expect(ruleIds(excluded)).toEqual(['button-name', 'image-alt']);
      expect(nodesOf(excluded, 'image-alt').map((n) => n.target)).toEqual([['#img-b']]);
    });

    it('reports include selectors the page has nothing for, or that are not CSS, as INVALID_OPTIONS (not retryable) and keeps the page', async () => {
      const retired = engine.stats().contextsRetired;
      for (const include of ['#not-on-this-page', '[[[']) {
        const result = await engine.scan(server.url('/two-images'), opts({ include: [include] }));
        expect(result.status, include).toBe('error');
        expect(result.error, include).toMatchObject({ code: 'INVALID_OPTIONS', retryable: false });
        expect(result.error?.message, include).toContain('include/exclude');
      }
      expect(engine.stats().contextsRetired).toBe(retired);
      expect(ruleIds(ok(await engine.scan(server.url('/two-images'), DEFAULT_SCAN_OPTIONS)))).toEqual(['button-name', 'image-alt']);
    });

    it('adds the AAA rules at level AAA', async () => {
      const aa = ok(await engine.scan(server.url('/contrast'), DEFAULT_SCAN_OPTIONS));
      expect(aa.violations).toEqual([]);
      expect(aa.rules.ran).not.toContain('color-contrast-enhanced');

      const aaa = ok(await engine.scan(server.url('/contrast'), opts({ wcagLevel: 'AAA' })));
      expect(aaa.rules.tags).toEqual(tagsFor({ ...DEFAULT_SCAN_OPTIONS, wcagLevel: 'AAA' }));
      expect(aaa.rules.tags).toContain('wcag2aaa');
      expect(ruleIds(aaa)).toEqual(['color-contrast-enhanced']);
      expect(aaa.violations[0]?.tags).toContain('wcag2aaa');
      expect(aaa.violations[0]?.wcag).toEqual(['1.4.6']);
    });

    it('gives a finding the same fingerprint on every scan, and different findings different ones', async () => {
      const first = ok(await engine.scan(server.url('/two-images'), DEFAULT_SCAN_OPTIONS));
      const second = ok(await engine.scan(server.url('/two-images'), DEFAULT_SCAN_OPTIONS));
      const prints = (r: PageResult) => r.violations.flatMap((v) => v.nodes.map((n) => `${v.id} ${n.target.join('|')} ${n.fingerprint}`));
      expect(prints(second)).toEqual(prints(first));
      const images = nodesOf(first, 'image-alt').map((n) => n.fingerprint);
      expect(images).toHaveLength(2);
      expect(images[0]).not.toBe(images[1]);
      for (const fp of prints(first)) expect(fp).toMatch(/ [0-9a-f]{24}$/);
    });
  });
});

describe('ScanEngine browser lifecycle', () => {
  let server: FixtureServer;

  beforeAll(async () => {
    server = await startFixtureServer();
    server.html('/page', page(`<h1>Page</h1>${NO_ALT_IMG}`));
    server.html('/slow', page('<h1>Slow</h1>'), { delayMs: 2_500 });
    // Holds about 160 MB of JavaScript heap while it is loaded.
    server.html('/big-heap', page(`<h1>Big heap</h1>${NO_ALT_IMG}<script>window.ballast = new Array(20e6).fill(1.5);</script>`));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('survives a browser crash mid-scan: a retryable error, then a relaunched browser', async () => {
    const engine = await createScanner(CONFIG);
    const pids: number[] = [];
    try {
      const first = engine.stats().browserPid;
      expect(first).toBeTypeOf('number');
      ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS));
      const oldTree = browserTree(first!);
      pids.push(...oldTree);
      expect(oldTree.length).toBeGreaterThan(1);

      const inFlight = engine.scan(server.url('/slow'), DEFAULT_SCAN_OPTIONS);
      const until = Date.now() + 5_000;
      while (server.requestsTo('/slow').length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(server.requestsTo('/slow')).toHaveLength(1);
      process.kill(first!, 'SIGKILL');
      const crashed = await inFlight;
      expect(crashed.status).toBe('error');
      expect(crashed.error).toMatchObject({ code: 'BROWSER_CRASHED', retryable: true });

      const next = ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(next)).toEqual(['image-alt']);
      const stats = engine.stats();
      expect(stats.browserRestarts).toBeGreaterThanOrEqual(1);
      expect(stats.browserPid).not.toBe(first);
      pids.push(...browserTree(stats.browserPid!));
      // Nothing of the crashed browser survives the relaunch.
      expect(await waitForExit(oldTree)).toEqual([]);
    } finally {
      await engine.close();
    }
    expect(await waitForExit(pids)).toEqual([]);
    expect(ourChromiumProcesses()).toEqual([]);
  });

  it('reports a page whose renderer dies during the checks as BROWSER_CRASHED at once, not as the deadline it was waiting on', async () => {
    // Its checks never end on their own: they ask for /checks-started and wait.
    server.route('/checks-started', (_req, res) => void res.writeHead(204).end());
    server.html('/crashes', page('<h1>Crashes</h1>', `<script>axe.run = () => { fetch('/checks-started'); return new Promise(() => {}); };</script>`));
    const engine = await createScanner({ ...CONFIG, axeTimeoutMs: 60_000, scanTimeoutMs: 120_000 });
    try {
      const scan = engine.scan(server.url('/crashes'), DEFAULT_SCAN_OPTIONS);
      while (server.requestsTo('/checks-started').length === 0) await new Promise((r) => setTimeout(r, 20));
      const renderers = browserTree(engine.stats().browserPid!).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer');
        } catch {
          return false;
        }
      });
      expect(renderers.length).toBeGreaterThan(0);
      for (const pid of renderers) process.kill(pid, 'SIGKILL');
      const crashed = await scan;
      expect(crashed.error).toMatchObject({ code: 'BROWSER_CRASHED', retryable: true });
      expect(crashed.error?.message).toContain('page crashed');
      // The browser itself lives on; the next scan gets a fresh page.
      expect(ruleIds(ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS)))).toEqual(['image-alt']);
      expect(engine.stats().browserRestarts).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it('garbage-collects a reused page whose heap passed gcHeapBytes before its next scan, and only then', async () => {
    const recorded = recordingLogger();
    const engine = await createScanner({ ...CONFIG, gcHeapBytes: 128 * 2 ** 20, logger: recorded.logger });
    const off = await createScanner({ ...CONFIG, gcHeapBytes: 0 });
    try {
      ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS));
      expect(engine.stats().heapCollections).toBe(0);
      for (let i = 0; i < 2; i++) expect(ruleIds(ok(await engine.scan(server.url(`/big-heap?i=${i}`), DEFAULT_SCAN_OPTIONS)))).toEqual(['image-alt']);
      expect(engine.stats().heapCollections).toBeGreaterThanOrEqual(1);
      // Each collection is logged with the page it was forced on and the heap's size then (past the limit).
      const collected = recorded.records.filter((r) => r.event === 'browser.heap_collected');
      expect(collected).toHaveLength(engine.stats().heapCollections!);
      expect(collected[0]).toMatchObject({ page: expect.any(Number), collections: 1, heapMb: expect.any(Number) });
      expect(collected[0]!.heapMb).toBeGreaterThanOrEqual(128);
      // The collected page is the same warm page, and scans on.
      expect(engine.stats().browserRestarts).toBe(0);
      expect(ruleIds(ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS)))).toEqual(['image-alt']);

      ok(await off.scan(server.url('/big-heap?off'), DEFAULT_SCAN_OPTIONS));
      expect(off.stats().heapCollections).toBe(0);
    } finally {
      await Promise.all([engine.close(), off.close()]);
    }
  });

  it('recycles the browser every maxScansPerBrowser scans without losing a page', async () => {
    const engine = await createScanner({ ...CONFIG, maxScansPerBrowser: 3 });
    const pids = new Set<number>();
    const browsers = new Set<number>();
    try {
      for (let i = 0; i < 7; i++) {
        const result = ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS));
        expect(ruleIds(result)).toEqual(['image-alt']);
        const pid = engine.stats().browserPid!;
        browsers.add(pid);
        for (const p of browserTree(pid)) pids.add(p);
      }
      const stats = engine.stats();
      expect(stats.browserRestarts).toBeGreaterThanOrEqual(2);
      expect(stats.scansDone).toBe(7);
      expect(browsers.size).toBeGreaterThanOrEqual(2);
      // Recycled browsers are gone, only the current one lives.
      const current = stats.browserPid!;
      const retired = [...browsers].filter((p) => p !== current);
      expect(await waitForExit(retired)).toEqual([]);
      expect(isAlive(current)).toBe(true);
    } finally {
      await engine.close();
    }
    expect(await waitForExit([...pids])).toEqual([]);
    expect(ourChromiumProcesses()).toEqual([]);
  });
});
