/**
 * Scan correctness on a real third-party corpus: the GOV.UK accessibility-audit pages (142 pages,
 * one known barrier each), served on loopback. Whatever the engine adds around axe-core (warm pool,
 * isolation between scans, settle, deadlines) must not change a single finding: per page, the rule
 * ids and node counts equal those of a plain axe-core run (RawBaseline) with the same tags.
 */
import { readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS, type PageResult } from '../../src/domain/scan.js';
import { tagsFor } from '../../src/domain/wcag.js';
import { createScanner, DEFAULT_SCANNER_CONFIG } from '../../src/scanner/engine.js';
import { defaultResolver } from '../../src/scanner/target-guard.js';
import { RawBaseline, type RawPageResult } from '../support/raw-baseline.js';
import { startStaticServer, type StaticServer } from '../support/static-server.js';

// The corpus lives beside the project (/work/shared next to /work/main) and is never copied into it.
const CORPUS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/corpora/govuk-audit');
const PAGES = readdirSync(resolve(CORPUS, 'tests'))
  .filter((f) => f.endsWith('.html'))
  .sort();
const TAGS = tagsFor(DEFAULT_SCAN_OPTIONS);
const RUN_TIMEOUT_MS = 240_000;

type Counts = Record<string, number>;

function sorted(counts: Counts): Counts {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

function engineCounts(result: PageResult): Counts {
  return sorted(Object.fromEntries(result.violations.map((v) => [v.id, v.nodes.length])));
}

function rate(pages: number, ms: number): string {
  return `${(pages / (ms / 1000)).toFixed(1)} pages/s (${(ms / 1000).toFixed(1)} s)`;
}

/** Scans every URL with `concurrency` callers pulling from one list; results in input order. */
async function scanCorpus(urls: readonly string[], concurrency: number, logger?: Logger) {
  const scanner = await createScanner({
    ...DEFAULT_SCANNER_CONFIG,
    concurrency,
    ...(logger ? { logger } : {}),
    policy: { allowPrivate: true, allowedHosts: [], resolve: defaultResolver },
  });
  try {
    const results: PageResult[] = new Array(urls.length);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < urls.length) {
          const i = next++;
          results[i] = await scanner.scan(urls[i]!, DEFAULT_SCAN_OPTIONS);
        }
      }),
    );
    return { results, ms: performance.now() - started, stats: scanner.stats() };
  } finally {
    await scanner.close();
  }
}

describe('engine vs plain axe-core on the GOV.UK audit corpus', () => {
  let server: StaticServer;
  let urls: string[];
  let reference: RawPageResult[];

  beforeAll(async () => {
    server = await startStaticServer(CORPUS);
    urls = PAGES.map((f) => server.url(`tests/${f}`));
    const raw = await RawBaseline.start(4);
    try {
      const started = performance.now();
      reference = await raw.scanAll(urls, TAGS);
      console.info(`[corpus] RawBaseline, concurrency 4: ${rate(urls.length, performance.now() - started)}`);
    } finally {
      await raw.close();
    }
  }, RUN_TIMEOUT_MS);

  afterAll(async () => {
    await server?.close();
  });

  it('serves all 142 pages and the reference finds the known barriers', () => {
    expect(PAGES).toHaveLength(142);
    expect(reference.filter((r) => r.error !== undefined)).toEqual([]);
    const withFindings = reference.filter((r) => Object.keys(r.counts).length > 0);
    // A broken server (404s, wrong content types) would leave the reference empty and the comparison vacuous.
    expect(withFindings.length).toBeGreaterThanOrEqual(25);
    const rules = new Set(reference.flatMap((r) => Object.keys(r.counts)));
    for (const rule of ['image-alt', 'input-image-alt', 'button-name', 'label', 'color-contrast', 'link-name', 'frame-title']) expect(rules).toContain(rule);
  });

  for (const concurrency of [1, 4]) {
    it(
      `finds exactly what plain axe-core finds on every page, losing none, at concurrency ${concurrency}`,
      async () => {
        const { results, ms, stats } = await scanCorpus(urls, concurrency);
        console.info(`[corpus] engine, concurrency ${concurrency}: ${rate(urls.length, ms)}`);

        const lost = results.filter((r) => r.status !== 'ok').map((r) => `${r.url}: ${r.error?.code} ${r.error?.message}`);
        expect(lost).toEqual([]);

        const mismatches = results
          .map((r, i) => ({ page: PAGES[i], engine: engineCounts(r), axe: sorted(reference[i]!.counts) }))
          .filter((m) => JSON.stringify(m.engine) !== JSON.stringify(m.axe));
        expect(mismatches).toEqual([]);

        for (const r of results) {
          expect(r.rules.tags).toEqual(TAGS);
          expect(r.httpStatus).toBe(200);
          expect(r.finalUrl).toBe(r.url);
        }
        expect(stats.scansDone).toBe(urls.length);
        // 142 small pages are far below the default recycle thresholds (1,000 scans, 2 GiB).
        expect(stats.browserRestarts).toBe(0);
      },
      RUN_TIMEOUT_MS,
    );
  }

  it(
    'scans the <object> page every time at concurrency 4, though Chromium sometimes never finishes loading it',
    async () => {
      // In a shared browser context about one load in twenty of this page never fires `load` (its
      // object's frame never commits); 40 loads beside other pages of the site see that about twice.
      const object = PAGES.findIndex((f) => f.startsWith('html-object-not-embedded'));
      expect(object).toBeGreaterThanOrEqual(0);
      const others = PAGES.map((_, i) => i).filter((i) => i !== object);
      const picks = Array.from({ length: 40 }, (_, round) => [object, ...others.slice((round * 3) % others.length, (round * 3) % others.length + 3)]).flat();
      const stalls: unknown[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => void stalls.push(JSON.parse(line)) });
      const { results } = await scanCorpus(
        picks.map((i) => urls[i]!),
        4,
        logger,
      );
      const lost = results.filter((r) => r.status !== 'ok').map((r) => `${r.url}: ${r.error?.code} ${r.error?.message}`);
      expect(lost).toEqual([]);
      results.forEach((r, n) => expect(engineCounts(r), PAGES[picks[n]!]).toEqual(sorted(reference[picks[n]!]!.counts)));
      console.info(`[corpus] <object> page: ${stalls.filter((s) => (s as { event?: string }).event === 'navigation.load_stalled').length} stalled loads in 40`);
    },
    RUN_TIMEOUT_MS,
  );
});
