import { describe, expect, it } from 'vitest';
import { applyBaseline } from '../../src/reporters/baseline.js';
import { renderCsv } from '../../src/reporters/csv.js';
import { HOSTILE_HTML, makeReport } from './fixture.js';

/** RFC 4180 reader: quoted fields may hold commas, CR, LF and doubled quotes. Throws on malformed input. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (field === '' && c === '"') {
      const end = /^"((?:[^"]|"")*)"/.exec(text.slice(i));
      if (!end) throw new Error(`unterminated quoted field at ${i}`);
      field = end[1]!.replaceAll('""', '"');
      i += end[0].length;
      if (i < text.length && text[i] !== ',' && text[i] !== '\r') throw new Error(`text after closing quote at ${i}`);
      continue;
    }
    if (c === '"') throw new Error(`quote inside unquoted field at ${i}`);
    if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r') {
      if (text[i + 1] !== '\n') throw new Error(`bare CR at ${i}`);
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 2;
    } else if (c === '\n') {
      throw new Error(`bare LF at ${i}`);
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || row.length > 0) throw new Error('last record has no CRLF');
  return rows;
}

const HEADER = 'url,status,rule,impact,wcag,help,helpUrl,target,html,failureSummary,fingerprint,baseline'.split(',');

function records(text: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(text);
  expect(header).toEqual(HEADER);
  for (const row of rows) expect(row).toHaveLength(HEADER.length);
  return rows.map((row) => Object.fromEntries(HEADER.map((h, i) => [h, row[i]!])));
}

describe('renderCsv', () => {
  it('writes one row per node and one per page in error', () => {
    const rows = records(renderCsv(makeReport()));
    expect(rows).toHaveLength(10);
    expect(rows.filter((r) => r.status === 'ok')).toHaveLength(9);
    expect(rows.at(-1)).toMatchObject({
      url: 'https://example.com/down',
      status: 'error',
      rule: 'NAVIGATION_TIMEOUT',
      failureSummary: 'Navigation timed out after 30000 ms, "quoted", <b>',
    });
  });

  it('round-trips commas, quotes and line breaks through RFC 4180 quoting', () => {
    const [first, second, third] = records(renderCsv(makeReport()));
    expect(first).toMatchObject({
      url: 'https://example.com/',
      rule: 'image-alt',
      impact: 'critical',
      wcag: '1.1.1',
      target: 'img.hero',
      // Its control character is replaced (see below); quotes, markup and the rest are kept.
      html: HOSTILE_HTML.replace('\u0001', '\uFFFD'),
      fingerprint: 'fp-img-1',
      baseline: '',
    });
    expect(second!.target).toBe('img.logo, a > img');
    expect(third!.failureSummary).toBe('Fix any of the following:\n  Element has insufficient contrast');
  });

  it('defuses fields a spreadsheet would run as a formula', () => {
    const report = makeReport();
    report.pages[0]!.violations[2]!.help = '+SUM(1)';
    report.pages[0]!.violations[2]!.nodes[0]!.failureSummary = '\tcmd';
    const rows = records(renderCsv(report));
    expect(rows[0]!.failureSummary).toBe(`'=HYPERLINK("http://evil")`);
    expect(rows[1]!.failureSummary).toBe(`'-2+3`);
    expect(rows[7]!.help).toBe(`'+SUM(1)`);
    expect(rows[7]!.failureSummary).toBe(`'\tcmd`);
    expect(rows[8]!.target).toBe(`'@h3`);
    for (const row of rows) for (const value of Object.values(row)) expect(value).not.toMatch(/^[=+\-@\t\r]/);
  });

  it('replaces control characters but tab and line breaks, then defuses what would start a formula', () => {
    const report = makeReport();
    const node = report.pages[0]!.violations[0]!.nodes[0]!;
    node.html = '<b>\u0000a\u0007b\u001b[31mc\u007f</b>\tx\r\ny\nz';
    // A control character in front cannot smuggle a formula past the check: it is replaced first.
    node.failureSummary = '\u0001=HYPERLINK("http://evil")';
    report.pages[0]!.violations[1]!.nodes[0]!.failureSummary = '\u0000-1';
    const text = renderCsv(report);
    expect(text).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/);
    const rows = records(text);
    expect(rows[0]!.html).toBe('<b>\uFFFDa\uFFFDb\uFFFD[31mc\uFFFD</b>\tx\r\ny\nz');
    expect(rows[0]!.failureSummary).toBe('\uFFFD=HYPERLINK("http://evil")');
    expect(rows[2]!.failureSummary).toBe('\uFFFD-1');
  });

  it('fills the baseline column once a baseline was applied', () => {
    const baseline = makeReport();
    baseline.pages[0]!.violations = [];
    const rows = records(renderCsv(applyBaseline(makeReport(), baseline)));
    expect(rows.filter((r) => r.status === 'ok').every((r) => r.baseline === 'new')).toBe(true);
  });
});
