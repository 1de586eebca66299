import type { Impact, ScanOptions, WcagLevel, WcagVersion } from './scan.js';
import { IMPACTS } from './scan.js';

const VERSION_PREFIX: Record<WcagVersion, string> = { '2.0': 'wcag2', '2.1': 'wcag21', '2.2': 'wcag22' };
const VERSIONS: WcagVersion[] = ['2.0', '2.1', '2.2'];
const LEVELS: WcagLevel[] = ['A', 'AA', 'AAA'];

/**
 * axe-core tags for a WCAG version and level, cumulative over both:
 * 2.2 AA = wcag2a, wcag2aa, wcag21a, wcag21aa, wcag22aa. axe has no wcag21aaa/wcag22aaa tags,
 * so AAA adds wcag2aaa only; wcag22a does not exist either (2.2 added no level-A rule to axe).
 */
export function tagsFor(options: Pick<ScanOptions, 'wcagLevel' | 'wcagVersion' | 'bestPractice'>): string[] {
  const tags: string[] = [];
  const maxVersion = VERSIONS.indexOf(options.wcagVersion);
  const maxLevel = LEVELS.indexOf(options.wcagLevel);
  for (let v = 0; v <= maxVersion; v++) {
    const prefix = VERSION_PREFIX[VERSIONS[v]!];
    for (let l = 0; l <= Math.min(maxLevel, 1); l++) {
      const tag = `${prefix}${LEVELS[l]!.toLowerCase()}`;
      if (tag === 'wcag22a') continue;
      tags.push(tag);
    }
  }
  if (maxLevel >= 2) tags.push('wcag2aaa');
  if (options.bestPractice) tags.push('best-practice');
  return tags;
}

/** WCAG success criteria named by axe tags: "wcag111" -> "1.1.1", "wcag1412" -> "1.4.12". */
export function successCriteria(tags: readonly string[]): string[] {
  const out: string[] = [];
  for (const tag of tags) {
    const m = /^wcag(\d)(\d)(\d{1,2})$/.exec(tag);
    if (m) out.push(`${m[1]}.${m[2]}.${m[3]}`);
  }
  return out;
}

/** True when `impact` is at or above `threshold` (unknown impact counts as minor). */
export function impactAtLeast(impact: Impact | null, threshold: Impact): boolean {
  return IMPACTS.indexOf(impact ?? 'minor') >= IMPACTS.indexOf(threshold);
}
