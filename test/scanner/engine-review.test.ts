/**
 * The scan engine on pages a review found it got wrong: documents the browser does not show as
 * HTML, apps that render from scripts still loading after `load`. Real Chromium, loopback pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS } from '../../src/domain/scan.js';
import { createScanner } from '../../src/scanner/engine.js';
import type { Scanner } from '../../src/scanner/types.js';
import { ENGINE_TEST_CONFIG, NO_ALT_IMG, ok, recordingLogger, ruleIds } from '../support/engine.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { browserTree, ourChromiumProcesses, waitForExit } from '../support/processes.js';

/** How long the app's chunk takes to arrive: longer than any quiet window, well within settle. */
const CHUNK_DELAY_MS = 800;

describe('ScanEngine review: what the browser shows is what is checked', () => {
  let server: FixtureServer;
  let engine: Scanner;

  beforeAll(async () => {
    server = await startFixtureServer();
    server.html('/static', page('<h1>Static</h1>'));
    engine = await createScanner({ ...ENGINE_TEST_CONFIG });
  });

  afterAll(async () => {
    await engine?.close();
    await server?.close();
  });

  it('refuses XML, a feed and an SVG image (Content-Type names XML) as NON_HTML_DOCUMENT, not retryable, and still scans XHTML, also served as XML', async () => {
    server.body('/data.xml', 'text/xml', '<?xml version="1.0"?><root><item>1</item></root>');
    server.body('/feed.xml', 'application/rss+xml', '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title></channel></rss>');
    server.body('/picture.svg', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><a href="#"><rect width="5" height="5"/></a></svg>');
    server.body(
      '/page.xhtml',
      'application/xhtml+xml',
      `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><title>XHTML</title></head><body><main><h1>XHTML</h1>${NO_ALT_IMG.replace('>', '/>')}</main></body></html>`,
    );
    for (const path of ['/data.xml', '/feed.xml', '/picture.svg']) {
      const result = await engine.scan(server.url(path), DEFAULT_SCAN_OPTIONS);
      expect(result.status, path).toBe('error');
      expect(result.error, path).toMatchObject({ code: 'NON_HTML_DOCUMENT', retryable: false });
      expect(result.violations, path).toEqual([]);
    }
    expect(ruleIds(ok(await engine.scan(server.url('/page.xhtml'), DEFAULT_SCAN_OPTIONS)))).toEqual(['image-alt']);
    // A legacy XHTML site served as application/xml or text/xml: the browser shows it as a page.
    for (const type of ['application/xml', 'text/xml']) {
      server.body(`/legacy-${type.replace('/', '-')}`, type, `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><title>Legacy</title></head><body><main><h1>Legacy</h1>${NO_ALT_IMG.replace('>', '/>')}</main></body></html>`);
      expect(ruleIds(ok(await engine.scan(server.url(`/legacy-${type.replace('/', '-')}`), DEFAULT_SCAN_OPTIONS))), type).toEqual(['image-alt']);
    }
    ok(await engine.scan(server.url('/static'), DEFAULT_SCAN_OPTIONS));
  });

  it('runs its own axe-core on a page whose script takes the global `axe` for itself (a variable, or a copy of axe-core that answers nothing)', async () => {
    server.html('/var-axe', page(`<h1>Tools</h1>${NO_ALT_IMG}`, `<script>var axe = 'a chopping tool';</script>`));
    server.html(
      '/own-axe',
      page(`<h1>Own axe</h1>${NO_ALT_IMG}`, `<script>window.axe = { run: async () => ({ violations: [], passes: [], incomplete: [], inapplicable: [] }) };</script>`),
    );
    for (const path of ['/var-axe', '/own-axe']) {
      const result = ok(await engine.scan(server.url(path), DEFAULT_SCAN_OPTIONS));
      expect(ruleIds(result), path).toEqual(['image-alt']);
      expect(result.rules.ran.length, path).toBeGreaterThan(10);
    }
  });

  it('scans an app that renders from a module it import()s, which arrives after load, rendered', async () => {
    server.body('/chunk.js', 'text/javascript', `export function render() { document.getElementById('app').innerHTML = '<p>Loaded</p>${NO_ALT_IMG}'; }`, {
      delayMs: CHUNK_DELAY_MS,
    });
    server.html('/esm-app', page(`<h1>App</h1><div id="app">loading</div>`, `<script type="module">import('/chunk.js').then((m) => m.render());</script>`));
    const result = ok(await engine.scan(server.url('/esm-app'), DEFAULT_SCAN_OPTIONS));
    expect(ruleIds(result)).toContain('image-alt');
    expect(result.timings.settleMs).toBeLessThan(ENGINE_TEST_CONFIG.settleMaxMs + 2_000);
  });

  it('scans an app that renders from a script it adds after load, which arrives slower than the quiet window, rendered', async () => {
    server.body('/late.js', 'text/javascript', `document.getElementById('app').innerHTML = '<p>Loaded</p>${NO_ALT_IMG}';`, { delayMs: CHUNK_DELAY_MS });
    server.html(
      '/late-script-app',
      page(`<h1>App</h1><div id="app">loading</div>`, `<script>addEventListener('load', () => { const s = document.createElement('script'); s.src = '/late.js'; document.head.append(s); });</script>`),
    );
    const result = ok(await engine.scan(server.url('/late-script-app'), DEFAULT_SCAN_OPTIONS));
    expect(ruleIds(result)).toContain('image-alt');
  });
});

describe('ScanEngine review: pages behind HTTP authentication', () => {
  let server: FixtureServer;

  beforeAll(async () => {
    server = await startFixtureServer();
    server.route('/basic', (_req, res) =>
      res.writeHead(401, { 'www-authenticate': 'Basic realm="staging"', 'content-type': 'text/html; charset=utf-8' }).end(page('<h1>Sign in</h1>')),
    );
    server.html('/protected-image', page(`<h1>Page</h1>${NO_ALT_IMG}<img src="/basic" alt="logo">`));
  });

  afterAll(async () => {
    await server?.close();
  });

  for (const allowPrivate of [true, false]) {
    it(`reports a page that asks for HTTP authentication as HTTP_CLIENT_ERROR, not retryable (private targets ${allowPrivate ? 'allowed' : 'refused'})`, async () => {
      const engine = await createScanner({ ...ENGINE_TEST_CONFIG, policy: { ...ENGINE_TEST_CONFIG.policy, allowPrivate, allowedHosts: ['127.0.0.1'] } });
      try {
        const result = await engine.scan(server.url('/basic'), DEFAULT_SCAN_OPTIONS);
        expect(result.status).toBe('error');
        expect(result.error).toMatchObject({ code: 'HTTP_CLIENT_ERROR', retryable: false });
        expect(engine.stats().contextsRetired).toBe(0);
      } finally {
        await engine.close();
      }
    });
  }

  for (const allowPrivate of [false, true]) {
    it(`scans a page with an image behind HTTP authentication, instead of timing out (private targets ${allowPrivate ? 'allowed' : 'refused'})`, async () => {
      const engine = await createScanner({ ...ENGINE_TEST_CONFIG, policy: { ...ENGINE_TEST_CONFIG.policy, allowPrivate, allowedHosts: ['127.0.0.1'] } });
      try {
        const result = ok(await engine.scan(server.url('/protected-image'), DEFAULT_SCAN_OPTIONS));
        expect(ruleIds(result)).toEqual(['image-alt']);
        expect(server.requestsTo('/basic').length).toBeGreaterThanOrEqual(1);
      } finally {
        await engine.close();
      }
    });
  }
});

describe('ScanEngine review: isolation of the tab itself', () => {
  let server: FixtureServer;
  let engine: Scanner;

  beforeAll(async () => {
    server = await startFixtureServer();
    engine = await createScanner({ ...ENGINE_TEST_CONFIG });
  });

  afterAll(async () => {
    await engine?.close();
    await server?.close();
  });

  it('leaves no window.name for the next scan on the page, of the same site or another, whether the writer was static, live or an error page', async () => {
    server.html('/name-static', page('<h1>Static</h1>', `<script>window.name = 'from-static';</script>`));
    server.html('/name-live', page('<h1>Live</h1>', `<script>window.name = 'from-live'; setInterval(() => {}, 100);</script>`));
    server.html('/name-404', page('<h1>Gone</h1>', `<script>window.name = 'from-404';</script>`), { status: 404 });
    server.html('/name-reader', page('<h1>Reader</h1>', `<script>fetch('/name-report?name=' + encodeURIComponent(window.name));</script>`));
    for (const writer of ['/name-static', '/name-live', '/name-404']) {
      await engine.scan(server.url(writer), DEFAULT_SCAN_OPTIONS);
      ok(await engine.scan(server.url('/name-reader'), DEFAULT_SCAN_OPTIONS));
      ok(await engine.scan(server.url('/name-reader', 'localhost'), DEFAULT_SCAN_OPTIONS));
    }
    const seen = server.requestsTo('/name-report').map((r) => `${r.host.split(':')[0]} ${new URL(r.url, 'http://x').searchParams.get('name')}`);
    expect(seen).toEqual(Array.from({ length: 3 }, () => ['127.0.0.1 ', 'localhost ']).flat());
    expect(engine.stats().contextsRetired).toBe(0);
  });
});

describe('ScanEngine review: a browser that stops answering', () => {
  let server: FixtureServer;

  beforeAll(async () => {
    server = await startFixtureServer();
    server.html('/page', page(`<h1>Page</h1>${NO_ALT_IMG}`));
    server.html('/other', page(`<h1>Other</h1>${NO_ALT_IMG}`));
  });

  afterAll(async () => {
    await server?.close();
  });

  /**
   * Scans once, stops the browser process (SIGSTOP: its renderers keep running, nothing it is asked
   * comes back), scans again (fails), then scans on: the next scan must run on a new browser.
   */
  async function hangAndRecover(scanOptions: { headers?: Record<string, string> } = {}): Promise<void> {
    const log = recordingLogger();
    const engine = await createScanner({ ...ENGINE_TEST_CONFIG, logger: log.logger });
    const first = engine.stats().browserPid!;
    const pids = browserTree(first);
    try {
      ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS, scanOptions));
      process.kill(first, 'SIGSTOP');
      const failed = await engine.scan(server.url('/other'), DEFAULT_SCAN_OPTIONS, scanOptions);
      expect(failed.status).toBe('error');
      expect(failed.error?.retryable).toBe(true);
      const next = ok(await engine.scan(server.url('/page'), DEFAULT_SCAN_OPTIONS, scanOptions));
      expect(ruleIds(next)).toEqual(['image-alt']);
      expect(log.events).toContain('browser.hung');
      expect(engine.stats().browserPid).not.toBe(first);
      expect(engine.stats().browserRestarts).toBeGreaterThanOrEqual(1);
      pids.push(...browserTree(engine.stats().browserPid!));
    } finally {
      try {
        process.kill(first, 'SIGCONT');
      } catch {
        // already gone
      }
      await engine.close();
    }
    expect(await waitForExit(pids)).toEqual([]);
    expect(ourChromiumProcesses()).toEqual([]);
  }

  it('kills and relaunches a hung browser after a scan failed on it: the next scan runs on a fresh one, not after the protocol timeout', async () => {
    await hangAndRecover();
  }, 90_000);

  it('does not hold a scan with extra headers (interception turned on for it) until the protocol timeout, and recovers', async () => {
    await hangAndRecover({ headers: { 'X-Preview-Token': 's3cret' } });
  }, 90_000);
});
