import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandRepeats, FIXTURE_PAGES, HEALTHY_PAGES, startFixtureSite, type FixtureSite } from '../../src/diagnostics/fixture-site.js';

let site: FixtureSite;
beforeAll(async () => {
  site = await startFixtureSite();
});
afterAll(async () => {
  await site?.close();
});

describe('fixture site', () => {
  it('listens on loopback and serves every healthy page as HTML', async () => {
    expect(site.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const path of [...HEALTHY_PAGES, '/', FIXTURE_PAGES.index]) {
      const res = await fetch(site.url(path));
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      expect(await res.text()).toMatch(/<!doctype html>/i);
    }
    expect((await fetch(site.url('/assets/spa.js'))).headers.get('content-type')).toMatch(/javascript/);
    expect(await (await fetch(site.url('/assets/dashboard.json'))).json()).toMatchObject({ title: 'Dashboard' });
  });

  it('expands the heavy page into thousands of elements', async () => {
    const html = await (await fetch(site.url(FIXTURE_PAGES.heavy))).text();
    expect(html).not.toMatch(/repeat|\{\{i\}\}/);
    expect(html.match(/<tr>/g)!.length).toBeGreaterThan(150);
    expect(expandRepeats('a<!-- repeat 3 -->[{{i}}]<!-- /repeat -->b')).toBe('a[1][2][3]b');
  });

  it('answers 500, late, or never on the special routes, and 404 outside the site', async () => {
    expect((await fetch(site.url(FIXTURE_PAGES.error))).status).toBe(500);
    const t0 = performance.now();
    expect((await fetch(site.url(`${FIXTURE_PAGES.slow}?ms=300`))).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    await expect(fetch(site.url(FIXTURE_PAGES.hang), { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    expect((await fetch(site.url('/missing.html'))).status).toBe(404);
    expect((await fetch(`${site.origin}/%2e%2e/%2e%2e/package.json`)).status).toBe(404);
    expect((await fetch(`${site.origin}/..%2f..%2fpackage.json`)).status).toBe(404);
  });

  it('closes with a request still hanging', async () => {
    const other = await startFixtureSite();
    const pending = fetch(other.url(FIXTURE_PAGES.hang)).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 50));
    await other.close();
    expect(await pending).toBeInstanceOf(Error);
  });
});
