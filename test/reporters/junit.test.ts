import { describe, expect, it } from 'vitest';
import { renderJunit } from '../../src/reporters/junit.js';
import { HOSTILE_HTML, makeReport } from './fixture.js';

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** A strict little XML reader: throws on mismatched tags, bad entities, raw `<`/`&`, or control characters. */
function parseXml(xml: string): XmlElement {
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(xml)) throw new Error('control character in XML');
  const decode = (s: string): string => {
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(s)) throw new Error(`bad entity in ${s}`);
    if (s.includes('<')) throw new Error(`raw < in ${s}`);
    return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, e: string) => {
      const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
      if (named[e] !== undefined) return named[e]!;
      return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    });
  };
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const root: XmlElement = { name: '#root', attrs: {}, children: [], text: '' };
  const stack = [root];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    stack.at(-1)!.text += decode(body.slice(last, m.index));
    last = tag.lastIndex;
    const [, closing, name, rawAttrs, selfClosing] = m;
    if (closing) {
      const open = stack.pop()!;
      if (open.name !== name) throw new Error(`</${name}> closes <${open.name}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of rawAttrs!.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      attrs[a[1]!] = decode(a[2]!);
    }
    const element: XmlElement = { name: name!, attrs, children: [], text: '' };
    stack.at(-1)!.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  stack.at(-1)!.text += decode(body.slice(last));
  if (stack.length !== 1) throw new Error(`unclosed <${stack.at(-1)!.name}>`);
  if (root.children.length !== 1 || root.text.trim() !== '') throw new Error('expected exactly one root element');
  return root.children[0]!;
}

const all = (e: XmlElement, name: string): XmlElement[] =>
  e.children.flatMap((c) => (c.name === name ? [c, ...all(c, name)] : all(c, name)));

describe('renderJunit', () => {
  const xml = renderJunit(makeReport());
  const root = parseXml(xml);

  it('is well-formed XML with totals on <testsuites>', () => {
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n')).toBe(true);
    expect(root.name).toBe('testsuites');
    // 6 rules on the home page + 3 on /about + 1 error test case for /down.
    expect(all(root, 'testcase')).toHaveLength(10);
    // The report's gate is --fail-on serious: the moderate and minor rules are skipped, not failed.
    expect(root.attrs).toEqual({ name: 'wcagai', tests: '10', failures: '2', errors: '1', time: '32.500' });
  });

  it('has one suite per page, one test case per rule that ran, a failure per violated rule the gate counts', () => {
    const suites = all(root, 'testsuite');
    expect(suites.map((s) => s.attrs.name)).toEqual([
      'https://example.com/',
      'https://example.com/about?a=1&b=2',
      'https://example.com/down',
    ]);
    const [home, about, down] = suites;
    expect(home!.attrs).toMatchObject({ tests: '6', failures: '2', errors: '0', skipped: '2', time: '2.000' });
    const cases = all(home!, 'testcase');
    expect(cases.map((c) => c.attrs.name)).toEqual([
      'image-alt', 'color-contrast', 'region', 'heading-order', 'html-has-lang', 'document-title',
    ]);
    expect(cases.every((c) => c.attrs.classname === 'https://example.com/')).toBe(true);
    expect(all(home!, 'failure').map((f) => f.attrs.type)).toEqual(['critical', 'serious']);
    const skipped = all(home!, 'skipped');
    expect(skipped.map((f) => f.attrs.message!.replace(/^.*, /, ''))).toEqual(['below --fail-on serious)', 'below --fail-on serious)']);
    expect(skipped[0]!.text).toContain('(moderate');
    expect(all(about!, 'failure')).toHaveLength(0);
    expect(all(about!, 'testcase')).toHaveLength(3);
    expect(down!.attrs).toMatchObject({ tests: '1', failures: '0', errors: '1', time: '30.010' });
    const error = all(down!, 'error')[0]!;
    expect(error.attrs.type).toBe('NAVIGATION_TIMEOUT');
    expect(error.attrs.message).toBe('Navigation timed out after 30000 ms, "quoted", <b>');
  });

  it('lists the failing nodes in the failure text, escaped, without control characters', () => {
    const failure = all(root, 'failure')[0]!;
    expect(failure.attrs.message).toBe('Images must have alternative text (2 elements)');
    expect(failure.text).toContain('- img.hero');
    expect(failure.text).toContain(HOSTILE_HTML.replace('\u0001', ''));
    expect(failure.text).toContain('- img.logo, a > img');
    expect(xml).toContain('&lt;script&gt;');
    expect(xml).not.toContain('<script>');
  });

  it('agrees with the gate under a baseline: a rule whose findings all persist is skipped, one with a new finding fails', () => {
    const report = makeReport();
    report.options = { ...report.options, failOn: 'minor', baseline: 'last.json' };
    const home = report.pages[0]!;
    for (const v of home.violations) for (const node of v.nodes) node.baseline = 'persisting';
    home.violations[1]!.nodes[0]!.baseline = 'new';
    home.violations[2]!.nodes[0]!.baseline = 'not-comparable';
    const suite = all(parseXml(renderJunit(report)), 'testsuite')[0]!;
    expect(suite.attrs).toMatchObject({ tests: '6', failures: '2', skipped: '2' });
    const outcome = (id: string) => all(suite, 'testcase').find((c) => c.attrs.name === id)!.children.map((c) => c.name);
    expect([outcome('image-alt'), outcome('color-contrast'), outcome('region'), outcome('heading-order'), outcome('html-has-lang')]).toEqual([['skipped'], ['failure'], ['failure'], ['skipped'], []]);
    const persisting = all(suite, 'skipped')[0]!;
    expect(persisting.attrs.message).toBe('Images must have alternative text (2 elements, persisting: in the baseline)');
    expect(persisting.text).toContain('- img.hero [persisting]');
    // Without a gate in the report (a report rendered by the API): every violated rule fails.
    delete report.options.failOn;
    delete report.options.baseline;
    delete report.summary.baseline;
    for (const v of home.violations) for (const node of v.nodes) delete node.baseline;
    expect(all(parseXml(renderJunit(report)), 'testsuite')[0]!.attrs).toMatchObject({ failures: '4', skipped: '0' });
  });

  it('keeps line breaks in attributes as character references', () => {
    const report = makeReport();
    report.pages[2]!.error!.message = 'line one\nline two\ttab';
    const error = all(parseXml(renderJunit(report)), 'error')[0]!;
    expect(error.attrs.message).toBe('line one\nline two\ttab');
  });
});
