import { describe, expect, it } from 'vitest';
import { applyBaseline } from '../../src/reporters/baseline.js';
import { artifactUri, locationFingerprint, MAX_RESULTS, renderSarif } from '../../src/reporters/sarif.js';
import { makeReport } from './fixture.js';

interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: string;
  message: { text: string };
  locations: Array<{
    physicalLocation: { artifactLocation: { uri: string }; region?: { startLine: number; snippet?: { text: string } } };
    logicalLocations: Array<{ fullyQualifiedName: string; kind: string }>;
  }>;
  partialFingerprints: Record<string, string>;
  properties: { url: string; fingerprint: string };
  baselineState?: string;
}

interface SarifRule {
  id: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  helpUri?: string;
  properties: { tags: string[] };
  defaultConfiguration: { level: string };
}

function parse(text: string) {
  const log = JSON.parse(text) as {
    $schema: string;
    version: string;
    runs: Array<{
      tool: { driver: { name: string; version: string; informationUri: string; rules: SarifRule[] } };
      invocations: Array<{
        executionSuccessful: boolean;
        toolExecutionNotifications: Array<{
          level: string;
          message: { text: string };
          descriptor: { id: string };
          locations: Array<{ physicalLocation: { artifactLocation: { uri: string } } }>;
          properties: { url: string };
        }>;
      }>;
      results: SarifResult[];
    }>;
  };
  expect(log.runs).toHaveLength(1);
  return { log, run: log.runs[0]! };
}

describe('renderSarif', () => {
  it('writes a SARIF 2.1.0 log with the tool from the report', () => {
    const { log, run } = parse(renderSarif(makeReport()));
    expect(log.$schema).toBe('https://json.schemastore.org/sarif-2.1.0.json');
    expect(log.version).toBe('2.1.0');
    expect(run.tool.driver).toMatchObject({ name: 'wcagai', version: '0.1.0' });
    expect(() => new URL(run.tool.driver.informationUri)).not.toThrow();
  });

  it('declares each violated rule once, with results pointing at it by id and index', () => {
    const { run } = parse(renderSarif(makeReport()));
    const rules = run.tool.driver.rules;
    expect(rules.map((r) => r.id)).toEqual(['image-alt', 'color-contrast', 'region', 'heading-order']);
    expect(rules[0]).toMatchObject({
      shortDescription: { text: 'Images must have alternative text' },
      fullDescription: { text: 'Ensures <img> elements have alternate text' },
      helpUri: 'https://dequeuniversity.com/rules/axe/4.11/image-alt',
      defaultConfiguration: { level: 'error' },
    });
    expect(rules[0]!.properties.tags).toEqual(['accessibility', 'cat.text-alternatives', 'wcag2a', 'wcag111']);
    expect(run.results).toHaveLength(9);
    for (const result of run.results) expect(rules[result.ruleIndex]!.id).toBe(result.ruleId);
  });

  it('maps impact to level: critical/serious error, moderate warning, minor note', () => {
    const { run } = parse(renderSarif(makeReport()));
    const levels = Object.fromEntries(run.results.map((r) => [r.ruleId, r.level]));
    expect(levels).toEqual({ 'image-alt': 'error', 'color-contrast': 'error', region: 'warning', 'heading-order': 'note' });
  });

  it('locates each node on its page with its CSS target, snippet and fingerprint', () => {
    const { run } = parse(renderSarif(makeReport()));
    const first = run.results[0]!;
    expect(first.message.text).toBe('Images must have alternative text\n=HYPERLINK("http://evil")');
    const location = first.locations[0]!;
    expect(location.physicalLocation.artifactLocation.uri).toBe('example.com/');
    expect(first.properties.url).toBe('https://example.com/');
    expect(location.physicalLocation.region?.snippet?.text).toContain('<script>');
    expect(location.logicalLocations[0]).toEqual({ fullyQualifiedName: 'img.hero', kind: 'element' });
    expect(run.results.map((r) => r.properties.fingerprint)).toEqual([
      'fp-img-1', 'fp-img-2', 'fp-cc-a', 'fp-cc-b', 'fp-cc-c', 'fp-cc-d', 'fp-cc-e', 'fp-region', 'fp-heading',
    ]);
    for (const r of run.results) expect(r.partialFingerprints).toEqual({ 'wcagai/v2': locationFingerprint(r.properties.url, r.properties.fingerprint) });
    expect(run.results.every((r) => r.baselineState === undefined)).toBe(true);
  });

  it('gives an element shared by two pages (a site header) a fingerprint per page', () => {
    const report = makeReport();
    const twin = { ...report.pages[0]!, url: 'https://example.com/about' };
    const { run } = parse(renderSarif({ ...report, pages: [report.pages[0]!, twin] }));
    const img = run.results.filter((r) => r.properties.fingerprint === 'fp-img-1');
    expect(img.map((r) => r.locations[0]!.physicalLocation.artifactLocation.uri)).toEqual(['example.com/', 'example.com/about']);
    expect(new Set(img.map((r) => r.partialFingerprints['wcagai/v2'])).size).toBe(2);
  });

  it('sets baselineState new / unchanged once a baseline was applied', () => {
    const report = makeReport();
    const baseline = makeReport();
    baseline.pages[0]!.violations = baseline.pages[0]!.violations.slice(0, 1);
    const { run } = parse(renderSarif(applyBaseline(report, baseline)));
    const states = Object.fromEntries(run.results.map((r) => [r.properties.fingerprint, r.baselineState]));
    expect(states['fp-img-1']).toBe('unchanged');
    expect(states['fp-cc-a']).toBe('new');
    expect(states['fp-heading']).toBe('new');
  });

  it('reports pages that could not be scanned as error notifications of a failed invocation', () => {
    const { run } = parse(renderSarif(makeReport()));
    const invocation = run.invocations[0]!;
    expect(invocation.executionSuccessful).toBe(false);
    expect(invocation.toolExecutionNotifications).toHaveLength(1);
    const note = invocation.toolExecutionNotifications[0]!;
    expect(note.level).toBe('error');
    expect(note.descriptor.id).toBe('NAVIGATION_TIMEOUT');
    expect(note.message.text).toContain('https://example.com/down');
  });

  it('marks a scan where every page loaded as successful', () => {
    const report = makeReport();
    report.pages = report.pages.filter((p) => p.status === 'ok');
    const { run } = parse(renderSarif(report));
    expect(run.invocations[0]!.executionSuccessful).toBe(true);
    expect(run.invocations[0]!.toolExecutionNotifications).toEqual([]);
  });

  it('keeps rules within GitHub limits: at most 20 tags, no invalid helpUri', () => {
    const report = makeReport();
    const v = report.pages[0]!.violations[0]!;
    v.tags = Array.from({ length: 30 }, (_, i) => `tag${i}`);
    v.helpUrl = 'not a url';
    const { run } = parse(renderSarif(report));
    const rule = run.tool.driver.rules[0]!;
    expect(rule.properties.tags).toHaveLength(20);
    expect(rule.helpUri).toBeUndefined();
  });

  it('locates pages by relative RFC 3986 URIs, which GitHub code scanning takes from a file: checkout', () => {
    // An absolute https: URI fails the upload ("SARIF URI scheme did not match the checkout URI
    // scheme file"), and `|`, `[`, `{`, a stray `%` fail its uri-reference check: WHATWG URLs keep them.
    const urls = [
      'https://example.com/about?a=1&b=2',
      'http://127.0.0.1:8080/a|b[c]^?q={x}|y^`[z]',
      'http://[::1]:3000/x',
      'https://example.com/%zz#/route#x|',
      'https://bücher.example/ö',
    ];
    const report = makeReport();
    const [home, , down] = report.pages;
    report.pages = [...urls.map((url) => ({ ...structuredClone(home!), url })), { ...down!, url: 'http://localhost:8080/down' }];
    const { run } = parse(renderSarif(report));
    const uris = [...new Set(run.results.map((r) => r.locations[0]!.physicalLocation.artifactLocation.uri))];
    expect(uris).toEqual([
      'example.com/about?a=1&b=2',
      '127.0.0.1%3A8080/a%7Cb%5Bc%5D%5E?q=%7Bx%7D%7Cy%5E%60%5Bz%5D',
      '%5B%3A%3A1%5D%3A3000/x',
      'example.com/%25zz#/route%23x%7C',
      'xn--bcher-kva.example/%C3%B6',
    ]);
    const note = run.invocations[0]!.toolExecutionNotifications[0]!;
    expect(note.locations[0]!.physicalLocation.artifactLocation.uri).toBe('localhost%3A8080/down');
    expect(note.properties.url).toBe('http://localhost:8080/down');
    // RFC 3986 relative-ref: no scheme (no colon before the first slash), only its characters, escapes well formed.
    const relativeRef = /^(?:[\w\-.~!$&'()*+,;=@]|%[0-9A-F]{2})*(?:\/(?:[\w\-.~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?(?:#(?:[\w\-.~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*)?$/i;
    for (const uri of [...uris, note.locations[0]!.physicalLocation.artifactLocation.uri]) {
      expect(uri).toMatch(relativeRef);
      expect(new URL(uri, 'file:///checkout/').href.startsWith('file:///checkout/')).toBe(true);
    }
    // Each result keeps its page's full URL.
    expect([...new Set(run.results.map((r) => r.properties.url))]).toEqual(urls);
  });

  it('artifactUri keeps something usable of a page URL that does not parse', () => {
    expect(artifactUri('not a url: #1 \ud800')).toBe('not%20a%20url%3A%20%231%20%EF%BF%BD');
  });

  it('keeps a run within the 25,000 results GitHub takes, dropping the least severe and saying so', () => {
    // Over 25,000 results the whole upload is rejected: a site-wide footer over a large sitemap gets there.
    const report = makeReport();
    const home = report.pages[0]!;
    const node = (i: number) => ({ target: [`#n${i}`], html: `<p id="n${i}">`, failureSummary: '', fingerprint: `fp-${i}` });
    const [imageAlt, contrast, region, heading] = home.violations;
    heading!.nodes = Array.from({ length: MAX_RESULTS }, (_, i) => node(i));
    report.pages = report.pages.filter((p) => p.status === 'ok');
    const total = [imageAlt, contrast, region, heading].reduce((n, v) => n + v!.nodes.length, 0);
    const { run } = parse(renderSarif(report));
    expect(run.results).toHaveLength(MAX_RESULTS);
    // Every error and warning stays, in report order; the minor ones fill what is left.
    const levels = run.results.map((r) => r.level);
    expect(levels.filter((l) => l !== 'note')).toHaveLength(8);
    expect(levels.slice(0, 8)).toEqual(['error', 'error', 'error', 'error', 'error', 'error', 'error', 'warning']);
    expect(run.results.at(-1)!.properties.fingerprint).toBe(`fp-${MAX_RESULTS - 8 - 1}`);
    for (const result of run.results) expect(run.tool.driver.rules[result.ruleIndex]!.id).toBe(result.ruleId);
    const invocation = run.invocations[0]!;
    expect(invocation.executionSuccessful).toBe(true);
    expect(invocation.toolExecutionNotifications).toEqual([
      expect.objectContaining({ level: 'warning', descriptor: { id: 'RESULTS_TRUNCATED' }, message: { text: expect.stringContaining(`8 of ${total} results left out`) } }),
    ]);
  });
});
