import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dedupeUrls, fetchSitemap, parseSitemapXml, readUrlsFile } from '../../src/scanner/inputs.js';
import { pinnedGet } from '../../src/scanner/policy-fetch.js';

let server: Server;
let base = '';
const requested: string[] = [];
const routes = new Map<string, { status?: number; type?: string; body: string | Buffer; delayMs?: number }>();

beforeAll(async () => {
  server = createServer((req, res) => {
    requested.push(req.url ?? '');
    const route = routes.get(req.url ?? '');
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const send = (): void => {
      res.writeHead(route.status ?? 200, { 'content-type': route.type ?? 'application/xml' }).end(route.body);
    };
    if (route.delayMs) setTimeout(send, route.delayMs);
    else send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  routes.set('/sitemap_index.xml', {
    body: `<?xml version="1.0" encoding="UTF-8"?>
<!-- <sitemap><loc>${'http://127.0.0.1:1/commented-out.xml'}</loc></sitemap> -->
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>${base}/pages.xml</loc><lastmod>2024-01-01</lastmod></sitemap>
  <sitemap>
    <loc>
      ${base}/more.xml.gz
    </loc>
  </sitemap>
  <sitemap><loc>${base}/pages.xml</loc></sitemap>
</sitemapindex>`,
  });
  routes.set('/pages.xml', {
    body: `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://site.test/</loc></url>
  <url><loc>https://site.test/search?q=a&amp;page=2&#38;x=&#x31;</loc>
    <image:image><image:loc>https://cdn.site.test/img.png</image:loc></image:image></url>
  <url><loc><![CDATA[https://site.test/cdata?a=1&b=2]]></loc></url>
  <url><loc>javascript:alert(1)</loc></url>
  <url><loc>https://site.test/</loc></url>
</urlset>`,
  });
  routes.set('/more.xml.gz', {
    type: 'application/gzip',
    body: gzipSync(`<?xml version="1.0"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>  https://site.test/gz/one  </loc></url>
  <url><loc>https://site.test/gz/two?x=&lt;y&gt;</loc></url>
  <url><loc>https://site.test/search?q=a&amp;page=2&amp;x=1</loc></url>
</urlset>`),
  });
  routes.set('/broken-index.xml', {
    body: `<sitemapindex><sitemap><loc>${base}/missing.xml</loc></sitemap></sitemapindex>`,
  });
  // One child of four reads; the others fail each its own way, one of them a nested index whose only child fails.
  routes.set('/mixed-index.xml', {
    body: `<sitemapindex><sitemap><loc>${base}/missing.xml</loc></sitemap><sitemap><loc>${base}/html</loc></sitemap><sitemap><loc>${base}/pages.xml</loc></sitemap><sitemap><loc>${base}/broken-index.xml</loc></sitemap></sitemapindex>`,
  });
  routes.set('/all-broken-index.xml', { body: `<sitemapindex><sitemap><loc>${base}/missing.xml</loc></sitemap><sitemap><loc>${base}/error</loc></sitemap></sitemapindex>` });
  routes.set('/html', { type: 'text/html', body: '<!doctype html><html><body>hi</body></html>' });
  routes.set('/error', { status: 500, body: 'boom' });
  routes.set('/slow.xml', { body: '<urlset></urlset>', delayMs: 2_000 });
  routes.set('/loop.xml', { body: `<sitemapindex><sitemap><loc>${base}/loop.xml</loc></sitemap></sitemapindex>` });
  // An index of 20 children that list no page: `limit` counts pages, so only the document cap stops the walk.
  for (let i = 0; i < 20; i++) routes.set(`/empty-${i}.xml`, { body: '<urlset></urlset>' });
  routes.set('/fanout.xml', { body: `<sitemapindex>${Array.from({ length: 20 }, (_, i) => `<sitemap><loc>${base}/empty-${i}.xml</loc></sitemap>`).join('')}</sitemapindex>` });
  routes.set('/slow-index.xml', { body: `<sitemapindex><sitemap><loc>${base}/slow.xml</loc></sitemap><sitemap><loc>${base}/slow.xml?2</loc></sitemap></sitemapindex>` });
  routes.set('/slow.xml?2', { body: '<urlset></urlset>', delayMs: 2_000 });
});

afterAll(async () => {
  // The slow route may still hold a connection open after its client gave up.
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('fetchSitemap', () => {
  it('follows the index, decompresses gzip, decodes entities and CDATA, de-duplicates', async () => {
    expect(await fetchSitemap(`${base}/sitemap_index.xml`)).toEqual([
      'https://site.test/',
      'https://site.test/search?q=a&page=2&x=1',
      'https://site.test/cdata?a=1&b=2',
      'https://site.test/gz/one',
      'https://site.test/gz/two?x=%3Cy%3E',
    ]);
  });

  it('honours the limit', async () => {
    expect(await fetchSitemap(`${base}/sitemap_index.xml`, { limit: 2 })).toEqual([
      'https://site.test/',
      'https://site.test/search?q=a&page=2&x=1',
    ]);
    expect(await fetchSitemap(`${base}/sitemap_index.xml`, { limit: 0 })).toEqual([]);
  });

  it('reports a 404 clearly', async () => {
    await expect(fetchSitemap(`${base}/nope.xml`)).rejects.toMatchObject({
      code: 'USAGE',
      message: `sitemap ${base}/nope.xml: HTTP 404 Not Found`,
    });
  });

  it('names the failing child sitemap', async () => {
    await expect(fetchSitemap(`${base}/broken-index.xml`)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining(`sitemap ${base}/missing.xml: HTTP 404`),
    });
  });

  it('skips a child sitemap that cannot be read, says which, and reads the others', async () => {
    const skipped: Array<{ sitemap: string; message: string }> = [];
    const pages = await fetchSitemap(`${base}/mixed-index.xml`, { onSkip: (s) => skipped.push(s) });
    expect(pages).toEqual(['https://site.test/', 'https://site.test/search?q=a&page=2&x=1', 'https://site.test/cdata?a=1&b=2']);
    expect(skipped).toEqual([
      { sitemap: `${base}/missing.xml`, message: `sitemap ${base}/missing.xml: HTTP 404 Not Found` },
      { sitemap: `${base}/html`, message: expect.stringContaining('not an XML sitemap') },
      { sitemap: `${base}/broken-index.xml`, message: expect.stringContaining(`sitemap ${base}/missing.xml: HTTP 404`) },
    ]);
    // The limit still counts pages across the children that read.
    expect(await fetchSitemap(`${base}/mixed-index.xml`, { limit: 1 })).toEqual(['https://site.test/']);
  });

  it('fails an index none of whose children could be read, naming each', async () => {
    const skipped: string[] = [];
    const failed = await fetchSitemap(`${base}/all-broken-index.xml`, { onSkip: (s) => skipped.push(s.sitemap) }).catch((err: unknown) => err);
    expect(failed).toMatchObject({ code: 'USAGE', message: expect.stringMatching(/^sitemap .*\/all-broken-index\.xml: none of its 2 sitemaps could be read/) });
    expect((failed as Error).message).toContain(`sitemap ${base}/missing.xml: HTTP 404`);
    expect((failed as Error).message).toContain(`sitemap ${base}/error: HTTP 500`);
    expect(skipped).toEqual([]);
  });

  it('refuses non-XML and server errors', async () => {
    await expect(fetchSitemap(`${base}/html`)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('not an XML sitemap'),
    });
    await expect(fetchSitemap(`${base}/error`)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('HTTP 500') });
  });

  it('reports network errors and timeouts with the reason', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(fetchSitemap(`http://127.0.0.1:${port}/sitemap.xml`)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/^sitemap http:\/\/127\.0\.0\.1:\d+\/sitemap\.xml: cannot fetch: .*ECONNREFUSED/),
    });
    await expect(fetchSitemap(`${base}/slow.xml`, { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining('timed out after 100 ms'),
    });
  });

  it('propagates caller cancellation as an abort', async () => {
    const controller = new AbortController();
    const pending = fetchSitemap(`${base}/slow.xml`, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('fetches at most maxDocuments sitemaps, and gives up the whole walk at totalTimeoutMs', async () => {
    const asked = () => requested.filter((p) => p.startsWith('/empty-')).length;
    const before = asked();
    await expect(fetchSitemap(`${base}/fanout.xml`, { limit: 5, maxDocuments: 5 })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('an index of more than 5 sitemaps') });
    expect(asked() - before).toBe(4);
    // Each child is within the per-request timeout; together they are not.
    await expect(fetchSitemap(`${base}/slow-index.xml`, { timeoutMs: 30_000, totalTimeoutMs: 500 })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/timed out after \d+ ms|not read within 500 ms/) });
  });

  it('reads a document of many <!…> declarations in one pass (each looked for a DOCTYPE subset to the end of the document)', () => {
    // About 1.6 MB: a few hundred milliseconds at worst now; the quadratic search took tens of seconds.
    const xml = `<urlset>${'<!x>'.repeat(400_000)}<url><loc>https://site.test/only</loc></url></urlset>`;
    expect(parseSitemapXml(xml)?.locs).toEqual(['https://site.test/only']);
    expect(parseSitemapXml('<!DOCTYPE urlset [ <!ENTITY a "x>y"> ]><urlset><url><loc>https://site.test/dt</loc></url></urlset>')?.locs).toEqual(['https://site.test/dt']);
  });

  it('fails a sitemap none of whose <loc> entries is an absolute http(s) URL, quoting one without its credentials', async () => {
    // An entry with credentials is refused like a relative one, and quoted without its password.
    routes.set('/credentials.xml', { body: '<urlset><url><loc>https://u:pw-s3cret@site.test/x</loc></url></urlset>' });
    await expect(fetchSitemap(`${base}/credentials.xml`)).rejects.toMatchObject({
      code: 'USAGE',
      message: `sitemap ${base}/credentials.xml: lists no page to scan: its one <loc> is not an http(s) URL wcagai can scan (absolute, without user:password@; such as "https://***@site.test/x")`,
    });
    routes.set('/relative.xml', { body: '<urlset><url><loc>/about</loc></url><url><loc>/contact</loc></url><url><loc>ftp://site.test/x</loc></url></urlset>' });
    routes.set('/relative-index.xml', { body: `<sitemapindex><sitemap><loc>${base}/relative.xml</loc></sitemap></sitemapindex>` });
    await expect(fetchSitemap(`${base}/relative.xml`)).rejects.toMatchObject({
      code: 'USAGE',
      message: `sitemap ${base}/relative.xml: lists no page to scan: all 3 of its <loc> entries are not an http(s) URL wcagai can scan (absolute, without user:password@; such as "/about")`,
    });
    await expect(fetchSitemap(`${base}/relative-index.xml`)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('such as "/about")') });
    // One good entry is enough: the others are left out, as before.
    routes.set('/partly-relative.xml', { body: '<urlset><url><loc>/about</loc></url><url><loc>https://site.test/ok</loc></url></urlset>' });
    expect(await fetchSitemap(`${base}/partly-relative.xml`)).toEqual(['https://site.test/ok']);
  });

  it('stops on self-referencing indexes', async () => {
    expect(await fetchSitemap(`${base}/loop.xml`)).toEqual([]);
  });

  it('uses an injected fetch', async () => {
    const fetchImpl = (async () =>
      new Response('<urlset><url><loc>https://x.test/a</loc></url></urlset>')) as unknown as typeof fetch;
    expect(await fetchSitemap('https://x.test/sitemap.xml', { fetchImpl })).toEqual(['https://x.test/a']);
  });
});

describe('readUrlsFile', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wcagai-inputs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('skips comments and blank lines, trims, normalizes', async () => {
    const file = join(dir, 'urls.txt');
    await writeFile(file, '\uFEFF# pages to scan\n\nhttps://a.test/\r\n   https://B.test/x  \n  # indented comment\n\t\nhttps://a.test/\n');
    expect(await readUrlsFile(file)).toEqual(['https://a.test/', 'https://b.test/x', 'https://a.test/']);
  });

  it('gives path:line for a bad line', async () => {
    const file = join(dir, 'bad.txt');
    await writeFile(file, '# header\nhttps://ok.test/\n\nnot a url\n');
    await expect(readUrlsFile(file)).rejects.toMatchObject({
      code: 'INVALID_URL',
      message: `${file}:4: not a URL: "not a url"`,
    });
    await writeFile(file, 'https://ok.test/\nfile:///etc/passwd\n');
    await expect(readUrlsFile(file)).rejects.toMatchObject({
      code: 'UNSUPPORTED_SCHEME',
      message: expect.stringContaining(`${file}:2:`),
    });
  });

  it('reports a missing file as a usage error', async () => {
    const file = join(dir, 'missing.txt');
    await expect(readUrlsFile(file)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringContaining(`cannot read URLs file ${file}: ENOENT`),
    });
  });
});

describe('dedupeUrls', () => {
  it('keeps the first occurrence and the order', () => {
    expect(dedupeUrls(['https://a.test', 'https://b.test/', 'https://A.test/', 'x', 'x', 'https://b.test/#top'])).toEqual([
      'https://a.test',
      'https://b.test/',
      'x',
      'https://b.test/#top',
    ]);
  });
});

describe('pinnedGet', () => {
  it('connects to the address the policy checked, never resolving the name again (DNS rebinding)', async () => {
    // The name does not resolve at all: only the pinned address can have been used.
    const res = await pinnedGet(`http://rebind.invalid:${(server.address() as AddressInfo).port}/pages.xml`, ['127.0.0.1'], { headers: { accept: 'application/xml' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<urlset');
    expect(requested.at(-1)).toBe('/pages.xml');
  });
});
