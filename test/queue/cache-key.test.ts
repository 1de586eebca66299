import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCAN_OPTIONS, type ScanOptions } from '../../src/domain/scan.js';
import { cacheKeyOf } from '../../src/queue/job.js';

/**
 * The cache key as wcagai computed it before its one-pass form (rebuilding each object from its
 * sorted entries): keys already stored in Redis (cache entries, in-flight markers) must still match.
 */
function earlierCacheKeyOf(url: string, options: ScanOptions): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, canonical(v)]));
    }
    return value;
  };
  const identity: Record<string, unknown> = { ...options };
  for (const field of ['rules', 'disableRules', 'include', 'exclude'] as const) {
    const list = options[field];
    identity[field] = list?.length ? [...new Set(list)].sort() : undefined;
  }
  const u = new URL(url);
  u.hash = '';
  return createHash('sha256').update(JSON.stringify([u.href, canonical(identity)])).digest('hex').slice(0, 32);
}

const list = fc.option(fc.array(fc.constantFrom('image-alt', 'label', 'color-contrast', '#main', 'nav a', 'é'), { maxLength: 5 }), { nil: undefined });
const options = fc.record(
  {
    wcagLevel: fc.constantFrom('A', 'AA', 'AAA'),
    wcagVersion: fc.constantFrom('2.0', '2.1', '2.2'),
    bestPractice: fc.boolean(),
    rules: list,
    disableRules: list,
    include: list,
    exclude: list,
    viewport: fc.option(fc.record({ width: fc.integer({ min: 200, max: 7680 }), height: fc.integer({ min: 200, max: 7680 }) }), { nil: undefined }),
  },
  { requiredKeys: ['wcagLevel', 'wcagVersion', 'bestPractice'] },
) as fc.Arbitrary<ScanOptions>;

describe('cacheKeyOf', () => {
  it('gives the key it always gave, for any options in any key order', () => {
    fc.assert(
      fc.property(options, fc.webUrl({ withFragments: true, withQueryParameters: true }), fc.boolean(), (opts, url, reversed) => {
        const shuffled = (reversed ? Object.fromEntries(Object.entries(opts).reverse()) : opts) as ScanOptions;
        expect(cacheKeyOf(url, shuffled)).toBe(earlierCacheKeyOf(url, opts));
      }),
      { numRuns: 500 },
    );
  });

  it('reads option lists as sets and ignores the fragment and undefined fields', () => {
    const url = 'https://example.com/page?q=1';
    const base = cacheKeyOf(url, { ...DEFAULT_SCAN_OPTIONS, rules: ['label', 'image-alt'] });
    expect(cacheKeyOf(`${url}#top`, { ...DEFAULT_SCAN_OPTIONS, rules: ['image-alt', 'label', 'label'], include: [], viewport: undefined })).toBe(base);
    expect(cacheKeyOf(url, { ...DEFAULT_SCAN_OPTIONS, rules: ['image-alt'] })).not.toBe(base);
    expect(cacheKeyOf(url, { ...DEFAULT_SCAN_OPTIONS, rules: ['label', 'image-alt'], wcagLevel: 'A' })).not.toBe(base);
    expect(cacheKeyOf('https://example.com/page?q=2', { ...DEFAULT_SCAN_OPTIONS, rules: ['label', 'image-alt'] })).not.toBe(base);
    // The viewport is an object: its fields in any order are one viewport.
    expect(cacheKeyOf(url, { ...DEFAULT_SCAN_OPTIONS, viewport: { width: 400, height: 800 } })).toBe(cacheKeyOf(url, { ...DEFAULT_SCAN_OPTIONS, viewport: { height: 800, width: 400 } } as ScanOptions));
  });
});
