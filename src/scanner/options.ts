import { createRequire } from 'node:module';
import { isTraversal, parse as parseSelector, type Selector } from 'css-what';
import type { ScanOptions } from '../domain/scan.js';
import { tagsFor } from '../domain/wcag.js';
import { WcagaiError } from '../errors/catalogue.js';

const require = createRequire(import.meta.url);
let ruleIds: Set<string> | undefined;

/** Every rule id this axe-core knows (axe-core's Node entry answers without a browser). */
export function knownRuleIds(): Set<string> {
  ruleIds ??= new Set((require('axe-core') as { getRules(): Array<{ ruleId: string }> }).getRules().map((r) => r.ruleId));
  return ruleIds;
}

/**
 * Why `selector` is not a CSS selector, or undefined when it parses. A syntax check only, without
 * a browser (css-what), that errs on the side of letting through: a selector it passes that
 * Chromium still refuses (an unknown pseudo-class, `#1a`) fails the scan as INVALID_OPTIONS,
 * as before. What it refuses no browser accepts (`##bad`, `div[`, `:not(`, `div,`, `div >`), but
 * for a few forms of recent CSS: an empty or partly invalid forgiving list (`:is()`,
 * `:where(.a, ##b)`) and a top-level nesting selector (`& p`), which match nothing a scan needs.
 * axe's include/exclude take each string as a querySelectorAll selector of the page (a list such
 * as `main, nav` included); frame and shadow DOM paths are not part of these options.
 */
export function selectorProblem(selector: string): string | undefined {
  if (selector.trim() === '') return 'an empty selector';
  let parsed: Selector[][];
  try {
    parsed = parseSelector(selector);
  } catch (err) {
    return `not a valid CSS selector (${(err as Error).message})`;
  }
  for (const compound of parsed) {
    const first = compound[0];
    const last = compound[compound.length - 1];
    if (!first || !last) return 'not a valid CSS selector (an empty part in the list)';
    // css-what reads a selector that starts or ends with a combinator (`> p`, `div >`): relative
    // selectors are for :has() only, and querySelectorAll refuses both.
    if (isTraversal(first) || isTraversal(last)) return 'not a valid CSS selector (it starts or ends with a combinator)';
  }
  return undefined;
}

/** Each `include`/`exclude` selector that does not parse, in order: its field (`include[0]`), itself and why. Entries that are not strings are the schema's to refuse. */
export function badSelectors(lists: { include?: readonly unknown[]; exclude?: readonly unknown[] }): Array<{ field: string; selector: string; problem: string }> {
  const bad: Array<{ field: string; selector: string; problem: string }> = [];
  for (const name of ['include', 'exclude'] as const) {
    for (const [i, selector] of (lists[name] ?? []).entries()) {
      if (typeof selector !== 'string') continue;
      const problem = selectorProblem(selector);
      if (problem !== undefined) bad.push({ field: `${name}[${i}]`, selector, problem });
    }
  }
  return bad;
}

/** Refuses rule ids axe-core does not know, naming them, and selectors that do not parse, before anything is queued or scanned. */
export function validateScanOptions(options: ScanOptions): void {
  const [bad] = badSelectors(options);
  if (bad) {
    // Worded as the scan words a selector the page refused ("include/exclude selectors: ...").
    throw new WcagaiError('INVALID_OPTIONS', `include/exclude selectors: ${bad.field} ${JSON.stringify(bad.selector)} is ${bad.problem}`, { details: { field: bad.field, selector: bad.selector } });
  }
  const known = knownRuleIds();
  for (const field of ['rules', 'disableRules'] as const) {
    const unknown = (options[field] ?? []).filter((id) => !known.has(id));
    if (unknown.length) {
      throw new WcagaiError('INVALID_OPTIONS', `${field}: unknown axe rule id(s): ${unknown.join(', ')}`, {
        details: { field, unknown },
      });
    }
  }
  // axe runs every rule runOnly names, whatever `rules: {enabled: false}` says: axeRunSpec leaves
  // the skipped ones out of the list, and a list left empty would check nothing at all.
  if (options.rules?.length && options.disableRules?.length) {
    const skipped = new Set(options.disableRules);
    if (options.rules.every((id) => skipped.has(id))) {
      throw new WcagaiError('INVALID_OPTIONS', `disableRules: skips every rule that rules names (${[...new Set(options.rules)].join(', ')}): nothing would be checked`, {
        details: { field: 'disableRules' },
      });
    }
  }
}

export interface AxeRunSpec {
  context: { include?: string[][]; exclude?: string[][] } | null;
  options: Record<string, unknown>;
  tags: string[];
}

/** The axe.run context and options for a scan: tags by WCAG level, or the named rules. */
export function axeRunSpec(options: ScanOptions): AxeRunSpec {
  const tags = tagsFor(options);
  const skipped = new Set(options.disableRules ?? []);
  const only = options.rules?.filter((id) => !skipped.has(id)) ?? [];
  const axeOptions: Record<string, unknown> = {
    // A rule both named and skipped is skipped: runOnly would run it regardless of `rules` below.
    runOnly: options.rules?.length ? { type: 'rule', values: only } : { type: 'tag', values: tags },
    resultTypes: ['violations'],
    iframes: true,
  };
  if (options.disableRules?.length) {
    axeOptions.rules = Object.fromEntries(options.disableRules.map((id) => [id, { enabled: false }]));
  }
  let context: AxeRunSpec['context'] = null;
  if (options.include?.length || options.exclude?.length) {
    context = {};
    if (options.include?.length) context.include = options.include.map((s) => [s]);
    if (options.exclude?.length) context.exclude = options.exclude.map((s) => [s]);
  }
  return { context, options: axeOptions, tags: options.rules?.length ? [] : tags };
}
