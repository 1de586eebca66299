import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Report } from '../../src/domain/scan.js';
import { page, startFixtureServer, type FixtureServer } from '../support/fixture-server.js';
import { runCli } from './run-cli.js';

/** `wcagai scan --sitemap` over a sitemap index one of whose children cannot be read. Needs `npm run build`. */

let server: FixtureServer;

const urlset = (locs: string[]) => `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs.map((l) => `<url><loc>${l}</loc></url>`).join('')}</urlset>`;
const sitemapindex = (locs: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs.map((l) => `<sitemap><loc>${l}</loc></sitemap>`).join('')}</sitemapindex>`;

beforeAll(async () => {
  server = await startFixtureServer();
  server
    .html('/clean.html', page('<h1>Clean</h1><p>Nothing to find here.</p>'))
    .body('/pages.xml', 'application/xml', urlset([server.url('/clean.html')]))
    .body('/index.xml', 'application/xml', sitemapindex([server.url('/gone.xml'), server.url('/pages.xml')]))
    .body('/dead-index.xml', 'application/xml', sitemapindex([server.url('/gone.xml')]));
});

afterAll(async () => {
  await server?.close();
});

describe('wcagai scan --sitemap with an index', () => {
  it('skips a child sitemap that cannot be read, says so on stderr, and scans the pages of the others', async () => {
    const run = await runCli(['scan', '--format', 'json', '--sitemap', server.url('/index.xml')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`wcagai: skipped sitemap ${server.url('/gone.xml')}: HTTP 404`);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.pages.map((p) => p.url)).toEqual([server.url('/clean.html')]);
  });

  it('fails in one line, naming the child, when no child of the index could be read', async () => {
    const run = await runCli(['scan', '--format', 'json', '--sitemap', server.url('/dead-index.xml')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^wcagai: sitemap .*\/dead-index\.xml: none of its 1 sitemaps could be read: sitemap .*\/gone\.xml: HTTP 404/)]);
  });
});
