import type { Browser, Page } from 'puppeteer-core';
import { launchBrowser, closeBrowser, findBrowser } from '../../src/scanner/browser.js';
import { axeScript } from '../../src/scanner/page-script.js';

/** What a plain axe-core run found on one page: rule id -> node count. */
export interface RawPageResult {
  url: string;
  error?: string;
  counts: Record<string, number>;
}

/**
 * The reference the engine is measured against: one Chromium, warm pages with axe-core
 * preloaded, no isolation, no settle, no deadlines. Used by the correctness tests and bench:scan.
 */
export class RawBaseline {
  private constructor(
    private readonly browser: Browser,
    private readonly pages: Page[],
  ) {}

  static async start(concurrency: number): Promise<RawBaseline> {
    const browser = await launchBrowser({ executablePath: await findBrowser(process.env) });
    const pages: Page[] = [];
    for (let i = 0; i < concurrency; i++) {
      const page = await browser.newPage();
      await page.evaluateOnNewDocument(axeScript());
      pages.push(page);
    }
    return new RawBaseline(browser, pages);
  }

  /** Scans every URL with `concurrency` pages pulling from one list; results in input order. */
  async scanAll(urls: readonly string[], tags: readonly string[]): Promise<RawPageResult[]> {
    const out: RawPageResult[] = new Array(urls.length);
    let next = 0;
    await Promise.all(
      this.pages.map(async (page) => {
        while (next < urls.length) {
          const i = next++;
          const url = urls[i]!;
          // The reference must be complete: on a loaded machine a page can miss its deadline, and
          // Chromium sometimes never finishes loading the corpus's <object> page (the engine
          // navigates again when a load stalls; this plain loop does not), so a failed page is
          // tried up to four times before it counts as an error.
          for (let attempt = 1; attempt <= 4; attempt++) {
            try {
              await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
              const counts = await page.evaluate(async (values) => {
                const axe = (window as unknown as { axe: { run(c: unknown, o: unknown): Promise<{ violations: Array<{ id: string; nodes: unknown[] }> }> } }).axe;
                const r = await axe.run(document, { runOnly: { type: 'tag', values }, resultTypes: ['violations'] });
                return Object.fromEntries(r.violations.map((v) => [v.id, v.nodes.length]));
              }, tags as string[]);
              out[i] = { url, counts };
              break;
            } catch (err) {
              out[i] = { url, error: (err as Error).message, counts: {} };
            }
          }
        }
      }),
    );
    return out;
  }

  async close(): Promise<void> {
    await closeBrowser(this.browser);
  }
}
