import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where every reliability scenario writes its figures; RELIABILITY.md is written from these files. */
export const RESULTS_DIR = join(import.meta.dirname, '..', '..', 'reliability-results');

/**
 * Records one scenario's figures: reliability-results/<scenario>.json plus one `[reliability]`
 * line in the test output, so a CI log carries them too.
 */
export function recordResult(scenario: string, figures: Record<string, unknown>): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const record = { scenario, at: new Date().toISOString(), ...figures };
  writeFileSync(join(RESULTS_DIR, `${scenario}.json`), `${JSON.stringify(record, null, 2)}\n`);
  console.log(`[reliability] ${scenario}: ${JSON.stringify(figures)}`);
}
