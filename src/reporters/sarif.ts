import { createHash } from 'node:crypto';
import type { Impact, Report, Violation } from '../domain/scan.js';
import { IMPACTS } from '../domain/scan.js';
import { targetText } from './summary.js';

type Level = 'error' | 'warning' | 'note';

const LEVELS: Record<Impact, Level> = { critical: 'error', serious: 'error', moderate: 'warning', minor: 'note' };
// GitHub code scanning rejects rules with more than 20 tags.
const MAX_TAGS = 20;
// ...and a whole upload whose run has more than 25,000 results (it shows the 5,000 most severe).
export const MAX_RESULTS = 25_000;
const LEVEL_RANK: Record<Level, number> = { error: 0, warning: 1, note: 2 };

/** SARIF 2.1.0 log with one run, accepted by GitHub code scanning. */
export function renderSarif(report: Report): string {
  const rules: Array<Record<string, unknown>> = [];
  const ruleIndex = new Map<string, number>();
  const ruleImpact = new Map<string, Impact | null>();
  const results: Array<Record<string, unknown>> = [];
  const notifications: Array<Record<string, unknown>> = [];

  for (const page of report.pages) {
    for (const v of page.violations) {
      if (!ruleIndex.has(v.id)) {
        ruleIndex.set(v.id, rules.length);
        rules.push(ruleFor(v));
      }
      // Rule impact is per finding in axe; the rule's default level follows the worst one seen.
      const worst = ruleImpact.get(v.id);
      if (worst === undefined || rank(v.impact) > rank(worst)) ruleImpact.set(v.id, v.impact);
      for (const node of v.nodes) {
        const result: Record<string, unknown> = {
          ruleId: v.id,
          ruleIndex: ruleIndex.get(v.id),
          level: levelOf(v.impact),
          message: { text: node.failureSummary ? `${v.help}\n${node.failureSummary}` : v.help },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: artifactUri(page.url) },
                // The DOM has no lines: line 1 anchors the finding, the snippet shows the element.
                region: { startLine: 1, snippet: { text: node.html } },
              },
              logicalLocations: [{ fullyQualifiedName: targetText(node.target), kind: 'element' }],
            },
          ],
          // Per page: the element's own fingerprint is the same on every page that shares it (a
          // site header), and SARIF consumers match results across runs by this value.
          partialFingerprints: { 'wcagai/v2': locationFingerprint(page.url, node.fingerprint) },
          properties: { url: page.url, target: node.target, impact: v.impact, wcag: v.wcag, fingerprint: node.fingerprint },
        };
        if (node.baseline === 'new') result.baselineState = 'new';
        else if (node.baseline === 'persisting') result.baselineState = 'unchanged';
        // not-comparable has no SARIF state: left without one, as a result never compared.
        results.push(result);
      }
    }
    if (page.status === 'error' || page.error) {
      const code = page.error?.code ?? 'error';
      notifications.push({
        level: 'error',
        message: { text: `${page.url}: ${code}: ${page.error?.message ?? 'page could not be scanned'}` },
        descriptor: { id: code },
        locations: [{ physicalLocation: { artifactLocation: { uri: artifactUri(page.url) } } }],
        properties: { url: page.url, retryable: page.error?.retryable ?? false },
      });
    }
  }

  for (const rule of rules) {
    const id = rule.id as string;
    rule.defaultConfiguration = { level: levelOf(ruleImpact.get(id) ?? null) };
  }

  const failed = notifications.length > 0;
  const kept = keepMostSevere(results);
  if (kept.length < results.length) {
    notifications.push({
      level: 'warning',
      message: {
        text: `${results.length - kept.length} of ${results.length} results left out, the least severe: GitHub code scanning rejects a run of more than ${MAX_RESULTS}. The JSON report has them all.`,
      },
      descriptor: { id: 'RESULTS_TRUNCATED' },
      properties: { results: results.length, kept: kept.length },
    });
  }

  const invocation: Record<string, unknown> = {
    executionSuccessful: !failed,
    toolExecutionNotifications: notifications,
  };
  if (isTimestamp(report.startedAt)) invocation.startTimeUtc = report.startedAt;
  if (isTimestamp(report.finishedAt)) invocation.endTimeUtc = report.finishedAt;

  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: report.tool.name,
            version: report.tool.version,
            informationUri: `https://www.npmjs.com/package/${encodeURIComponent(report.tool.name)}`,
            rules,
          },
        },
        invocations: [invocation],
        results: kept,
        columnKind: 'utf16CodeUnits',
        properties: { axeVersion: report.axeVersion, summary: report.summary },
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

/** At most MAX_RESULTS results, the most severe first chosen, in their original order. */
function keepMostSevere(results: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  if (results.length <= MAX_RESULTS) return results;
  const order = results.map((_, i) => i);
  order.sort((a, b) => LEVEL_RANK[results[a]!.level as Level] - LEVEL_RANK[results[b]!.level as Level] || a - b);
  return order
    .slice(0, MAX_RESULTS)
    .sort((a, b) => a - b)
    .map((i) => results[i]!);
}

/** A finding's fingerprint on one page: the element's fingerprint and the page's URL. */
export function locationFingerprint(pageUrl: string, fingerprint: string): string {
  return createHash('sha256').update(`${pageUrl}\n${fingerprint}`).digest('hex').slice(0, 24);
}

/**
 * A page as a SARIF artifact URI: relative, the host and path without the scheme
 * (`example.com/about?a=1`). GitHub code scanning rejects a whole log when an absolute URI's
 * scheme is not that of the checkout (`file`), and an upload whose URIs are not RFC 3986
 * (`|`, `[`, `{`, a stray `%`, which WHATWG URLs keep). The full URL is in `properties.url`.
 */
export function artifactUri(pageUrl: string): string {
  let url: URL;
  try {
    url = new URL(pageUrl);
  } catch {
    // Not a URL (a hand-edited report): kept as one relative path, lone surrogates replaced.
    return strictUri(pageUrl.replace(/[\uD800-\uDFFF]/gu, '\uFFFD').replaceAll(':', '%3A').replaceAll('#', '%23'));
  }
  // The first segment of a relative reference cannot hold a colon (it would read as a scheme):
  // the port's is encoded, as are an IPv6 literal's brackets and colons.
  const host = url.host.replace(/[:[\]]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const fragment = url.hash ? `#${strictUri(url.hash.slice(1).replaceAll('#', '%23'))}` : '';
  return `${host}${strictUri(url.pathname + url.search)}${fragment}`;
}

/** Percent-encodes what RFC 3986 allows in no path, query or fragment, and a `%` that starts no escape. */
function strictUri(value: string): string {
  return value
    .replace(/%(?![0-9A-Fa-f]{2})/g, '%25')
    .replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+/gu, (chars) => encodeURIComponent(chars));
}

function ruleFor(v: Violation): Record<string, unknown> {
  const tags = [...new Set(['accessibility', ...v.tags])].slice(0, MAX_TAGS);
  const rule: Record<string, unknown> = {
    id: v.id,
    shortDescription: { text: v.help },
    fullDescription: { text: v.description ?? v.help },
    help: { text: v.help },
    properties: { tags, wcag: v.wcag },
  };
  // helpUri must be a valid URI or the whole upload is rejected, so a malformed one is left out.
  const uri = absoluteUri(v.helpUrl);
  if (uri) {
    rule.helpUri = uri;
    rule.help = { text: `${v.help}\n${uri}`, markdown: `${markdownText(v.help)}\n\n[More information](${uri})` };
  }
  return rule;
}

function levelOf(impact: Impact | null): Level {
  // Unknown impact counts as minor, as the fail-on gate does.
  return LEVELS[impact ?? 'minor'];
}

function rank(impact: Impact | null): number {
  return IMPACTS.indexOf(impact ?? 'minor');
}

/** The URL normalised, with parentheses encoded so it cannot end a Markdown link early. */
function absoluteUri(value: string): string | undefined {
  try {
    return new URL(value).href.replaceAll('(', '%28').replaceAll(')', '%29');
  } catch {
    return undefined;
  }
}

// SARIF's startTimeUtc / endTimeUtc are JSON-schema date-times; anything else fails validation.
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function isTimestamp(value: string): boolean {
  return DATE_TIME.test(value) && !Number.isNaN(Date.parse(value));
}

function markdownText(value: string): string {
  return value.replace(/[\\`*_{}[\]()#+\-.!<>|]/g, '\\$&');
}
