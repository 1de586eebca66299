import { page, type FixtureServer, type ResponseOptions } from '../../support/fixture-server.js';

/** Small page bodies: clean, one with a missing alt text, one with an unlabelled field. */
const BODIES = [
  (n: number) => `<h1>Page ${n}</h1><p>Nothing wrong here.</p>`,
  (n: number) => `<h1>Page ${n}</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">`,
  (n: number) => `<h1>Page ${n}</h1><form><input type="text" name="q"></form>`,
];

/**
 * Serves `count` tiny pages at distinct paths (`/<label>/<n>.html`), so no two scans share a cache
 * or dedup key, and returns their URLs. A scan of one costs a navigation and an axe run.
 */
export function serveTinyPages(fixture: FixtureServer, label: string, count: number, options: ResponseOptions = {}): string[] {
  const urls: string[] = [];
  for (let n = 0; n < count; n++) {
    const path = `/${label}/${n}.html`;
    fixture.html(path, page(BODIES[n % BODIES.length]!(n)), options);
    urls.push(fixture.url(path));
  }
  return urls;
}
