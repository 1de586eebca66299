/**
 * The target guard inside the engine, with real Chromium: private targets are refused before a page
 * is used, and a public page cannot reach private addresses through redirects or subresources.
 *
 * The engine gets a resolver that says public.example.test is 93.184.216.34, and its egress proxy
 * (the browser's only way out) reaches that address on the loopback fixture server, as a NAT
 * would: the guard believes the host is public, as with a real public site. Chromium's own
 * resolver maps the names to 127.0.0.1 (`--host-resolver-rules`): a browser that resolved names
 * itself would reach loopback whatever the guard had checked, the DNS-rebinding case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS, type PageResult } from '../../src/domain/scan.js';
import { WcagaiError } from '../../src/errors/catalogue.js';
import { createScanner, DEFAULT_SCANNER_CONFIG } from '../../src/scanner/engine.js';
import type { Scanner } from '../../src/scanner/types.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';

const PUBLIC_HOST = 'public.example.test';
/** A second public site, for cross-site (out-of-process) frames. */
const OTHER_HOST = 'other.example.test';
const DNS: Record<string, string[]> = {
  [PUBLIC_HOST]: ['93.184.216.34'],
  [OTHER_HOST]: ['93.184.216.35'],
  // A public-looking name whose DNS answer is loopback.
  'sneaky.example.test': ['127.0.0.1'],
  // One public and one private answer: the browser may pick either.
  'mixed.example.test': ['93.184.216.34', '10.0.0.7'],
};
/** Checked as public, and public where the proxy connects (nothing listens there); the browser's own resolver says 127.0.0.1. */
const REBIND_HOST = 'rebind.example.test';
DNS[REBIND_HOST] = ['93.184.216.99'];
/** Public, but its resolver fails the first look-up (a resolver failing for a moment). */
const FLAKY_HOST = 'flaky.example.test';
DNS[FLAKY_HOST] = ['93.184.216.34'];
/** The public addresses the fixture server stands in for. */
const PUBLIC_ADDRESSES = ['93.184.216.34', '93.184.216.35'];
const GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

describe('ScanEngine target policy (allowPrivate: false)', () => {
  let server: FixtureServer;
  let engine: Scanner;
  const lookups: string[] = [];

  const publicUrl = (path: string): string => server.url(path, PUBLIC_HOST);
  const privateUrl = (path: string): string => server.url(path, '127.0.0.1');
  const secretRequests = (): string[] => server.requests.filter((r) => r.path.startsWith('/secret')).map((r) => `${r.upgrade ? 'upgrade ' : ''}${r.url}`);
  const privateWs = (path: string): string => privateUrl(path).replace('http:', 'ws:');

  beforeAll(async () => {
    server = await startFixtureServer();
    server.html('/hello', page('<h1>Hello</h1><p>A public page.</p>'));
    server.redirect('/redirect', privateUrl('/secret'));
    server.redirect('/img-redirect', privateUrl('/secret-redirected.png'));
    server.body('/public.png', 'image/gif', GIF);
    server.route('/ws-report', (_req, res) => void res.writeHead(204).end());
    server.html('/ws-frame', page('<h1>Other site</h1>', `<script>try { new WebSocket('${privateWs('/secret-ws-oopif')}'); } catch {}</script>`));
    for (const path of ['/secret', '/secret-rebind', '/secret-frame', '/secret.png', '/secret-redirected.png', '/secret-api', '/secret.js', '/secret.css', '/secret-beacon', '/secret-bg.png', '/secret-events']) {
      server.html(path, page('<h1>Internal</h1>'));
    }
    server.html(
      '/embeds',
      page(
        `<h1>Public page with private embeds</h1>
        <iframe title="internal" src="${privateUrl('/secret-frame')}"></iframe>
        <img src="${privateUrl('/secret.png')}" alt="internal">
        <img src="${publicUrl('/img-redirect')}" alt="redirected">
        <img src="/public.png" alt="public">
        <div style="background-image:url(${privateUrl('/secret-bg.png')});width:10px;height:10px"></div>
        <script src="${privateUrl('/secret.js')}"></script>
        <iframe title="inline" srcdoc="<script>try { new WebSocket(&quot;${privateWs('/secret-ws-srcdoc')}&quot;); } catch {}</script>"></iframe>
        <iframe title="other site" src="${server.url('/ws-frame', OTHER_HOST)}"></iframe>
        <script>
          const blank = document.createElement('iframe');
          blank.title = 'blank';
          document.body.append(blank);
          try { new blank.contentWindow.WebSocket('${privateWs('/secret-ws-blank')}'); } catch {}
          const events = [];
          const ws = new WebSocket('${privateWs('/secret-ws')}');
          ws.onerror = () => events.push('error');
          ws.addEventListener('close', (e) => {
            events.push('close:' + e.code + ':' + ws.readyState);
            fetch('/ws-report?events=' + events.join(','));
          });
        </script>`,
        `<link rel="stylesheet" href="${privateUrl('/secret.css')}">
        <script>
          fetch('${privateUrl('/secret-api')}').catch(() => {});
          navigator.sendBeacon('${privateUrl('/secret-beacon')}', 'x');
          try { new EventSource('${privateUrl('/secret-events')}'); } catch {}
        </script>`,
      ),
    );
    engine = await createScanner({
      ...DEFAULT_SCANNER_CONFIG,
      concurrency: 1,
      navigationTimeoutMs: 5_000,
      scanTimeoutMs: 10_000,
      settleMaxMs: 2_000,
      extraArgs: [`--host-resolver-rules=MAP ${PUBLIC_HOST} 127.0.0.1, MAP ${OTHER_HOST} 127.0.0.1, MAP ${REBIND_HOST} 127.0.0.1, MAP ${FLAKY_HOST} 127.0.0.1`],
      egressRoute: (address) => (PUBLIC_ADDRESSES.includes(address) ? '127.0.0.1' : address),
      policy: {
        allowPrivate: false,
        allowedHosts: [],
        resolve: async (host) => {
          lookups.push(host);
          if (host === FLAKY_HOST && lookups.filter((h) => h === FLAKY_HOST).length === 1) throw new WcagaiError('DNS_FAILURE', `cannot resolve ${host}: EAI_AGAIN`);
          const answer = DNS[host];
          if (!answer) throw new WcagaiError('DNS_FAILURE', `cannot resolve ${host}: ENOTFOUND`);
          return answer;
        },
      },
    });
  });

  afterAll(async () => {
    await engine?.close();
    await server?.close();
  });

  it('scans a public page normally (the host mapping reaches the fixture server)', async () => {
    const result = await engine.scan(publicUrl('/hello'), DEFAULT_SCAN_OPTIONS);
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ status: 'ok', httpStatus: 200, finalUrl: publicUrl('/hello') });
    expect(server.requestsTo('/hello')[0]?.host).toBe(`${PUBLIC_HOST}:${server.port}`);
    expect(lookups).toContain(PUBLIC_HOST);
  });

  const blockedTargets = (): Array<[string, string]> => [
    ['cloud metadata', 'http://169.254.169.254/latest/meta-data/'],
    ['IPv6 loopback', `http://[::1]:${server.port}/hello`],
    ['loopback as a decimal integer', `http://2130706433:${server.port}/hello`],
    ['loopback in hex shorthand', `http://0x7f.1:${server.port}/hello`],
    ['localhost', `http://localhost:${server.port}/hello`],
    ['a public-looking name resolving to loopback', `http://sneaky.example.test:${server.port}/hello`],
    ['a name with one private answer among public ones', `http://mixed.example.test:${server.port}/hello`],
  ];

  it('refuses private targets fast, before any page loads them', async () => {
    const before = { requests: server.requests.length, scans: engine.stats().scansDone };
    for (const [what, url] of blockedTargets()) {
      const started = performance.now();
      const result: PageResult = await engine.scan(url, DEFAULT_SCAN_OPTIONS);
      const elapsed = performance.now() - started;
      expect(result.status, what).toBe('error');
      expect(result.error, what).toMatchObject({ code: 'BLOCKED_TARGET', retryable: false });
      expect(result.httpStatus, what).toBeNull();
      expect(result.violations, what).toEqual([]);
      expect(elapsed, what).toBeLessThan(500);
    }
    // Nothing reached the server and no browser page was used.
    expect(server.requests.length).toBe(before.requests);
    expect(engine.stats().scansDone).toBe(before.scans);
  });

  it('connects to the address it checked, not to what the browser would resolve (DNS rebinding)', async () => {
    // The guard sees a public answer; Chromium's own resolver would say 127.0.0.1, where the
    // fixture server is. Through the egress proxy the browser resolves nothing: the connection goes
    // to the checked address (nothing answers there), and the loopback server never sees the request.
    const result = await engine.scan(server.url('/secret-rebind', REBIND_HOST), DEFAULT_SCAN_OPTIONS);
    expect(result.status).toBe('error');
    expect(server.requestsTo('/secret-rebind')).toEqual([]);
    expect(lookups).toContain(REBIND_HOST);
    // The engine carries on.
    expect((await engine.scan(publicUrl('/hello'), DEFAULT_SCAN_OPTIONS)).status).toBe('ok');
  });

  it('refuses a redirect from a public page to a private address, without following it', async () => {
    const result = await engine.scan(publicUrl('/redirect'), DEFAULT_SCAN_OPTIONS);
    expect(result.status).toBe('error');
    expect(result.error).toMatchObject({ code: 'BLOCKED_TARGET', retryable: false });
    expect(result.error?.message).toContain('127.0.0.1');
    expect(server.requestsTo('/redirect')).toHaveLength(1);
    expect(secretRequests()).toEqual([]);
    // The engine carries on.
    expect((await engine.scan(publicUrl('/hello'), DEFAULT_SCAN_OPTIONS)).status).toBe('ok');
  });

  it('reports a redirect target whose name failed to resolve as DNS_FAILURE, retryable (not as a refused target)', async () => {
    server.redirect('/to-flaky', server.url('/hello', FLAKY_HOST));
    const result = await engine.scan(publicUrl('/to-flaky'), DEFAULT_SCAN_OPTIONS);
    expect(result.error).toMatchObject({ code: 'DNS_FAILURE', retryable: true });
    // Its retry finds the name resolving again and scans the page.
    const again = await engine.scan(publicUrl('/to-flaky'), DEFAULT_SCAN_OPTIONS);
    expect(again.error).toBeUndefined();
    expect(again.finalUrl).toBe(server.url('/hello', FLAKY_HOST));
  });

  it('leaves nothing running after a page whose script sent it to a private address (the refused navigation replaces the document)', async () => {
    server.route('/blocked-tick', (_req, res) => void res.writeHead(204).end());
    server.html('/runs-then-redirects', page('<h1>Moving</h1>', `<script>setInterval(() => fetch('/blocked-tick'), 50); location.href = '${privateUrl('/secret')}';</script>`));
    const result = await engine.scan(publicUrl('/runs-then-redirects'), DEFAULT_SCAN_OPTIONS);
    expect(result.error).toMatchObject({ code: 'BLOCKED_TARGET', retryable: false });
    const ticks = server.requestsTo('/blocked-tick').length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(server.requestsTo('/blocked-tick')).toHaveLength(ticks);
    expect(secretRequests()).toEqual([]);
  });

  it('scans a public page but lets none of its frames, images, scripts or requests reach private addresses', async () => {
    const result = await engine.scan(publicUrl('/embeds'), DEFAULT_SCAN_OPTIONS);
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('ok');
    expect(result.rules.ran.length).toBeGreaterThan(0);
    // The page and its public subresources loaded (so the refusals are not a blanket block)...
    expect(server.requestsTo('/embeds')).toHaveLength(1);
    expect(server.requestsTo('/public.png')).toHaveLength(1);
    expect(server.requestsTo('/img-redirect')).toHaveLength(1);
    expect(server.requestsTo('/ws-frame')).toHaveLength(1);
    // ...and nothing private was asked for: not directly, not through a redirect, not over WebSocket
    // from any frame (main, srcdoc, blank, cross-site).
    expect(secretRequests()).toEqual([]);
    // A refused WebSocket looks like one that could not connect.
    const until = Date.now() + 2_000;
    while (server.requestsTo('/ws-report').length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(server.requestsTo('/ws-report')[0]?.url).toBe('/ws-report?events=error,close:1006:3');
  });
});
