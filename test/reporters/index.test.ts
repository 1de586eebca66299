import { describe, expect, it } from 'vitest';
import { REPORT_FORMATS, formatOfFile, isReportFormat, render } from '../../src/reporters/index.js';
import { renderJson } from '../../src/reporters/json.js';
import { makeReport } from './fixture.js';

describe('render', () => {
  it('knows every format', () => {
    expect([...REPORT_FORMATS].sort()).toEqual(['csv', 'html', 'json', 'junit', 'pretty', 'sarif']);
    expect(isReportFormat('sarif')).toBe(true);
    expect(isReportFormat('xml')).toBe(false);
  });

  it('takes the format of a report file from its name, JSON when the name says none', () => {
    expect(['a11y.sarif', 'x.sarif.json', 'junit.xml', 'report.HTML', 'r.htm', 'nodes.csv', 'notes.txt', 'last-week.json', 'report'].map(formatOfFile)).toEqual(['sarif', 'sarif', 'junit', 'html', 'html', 'csv', 'pretty', 'json', 'json']);
  });

  it('dispatches to each renderer', () => {
    const report = makeReport();
    expect(render(report, 'json')).toBe(renderJson(report));
    expect(JSON.parse(render(report, 'sarif')).version).toBe('2.1.0');
    expect(render(report, 'junit')).toContain('<testsuites name="wcagai"');
    expect(render(report, 'html')).toContain('<html lang="en">');
    expect(render(report, 'csv').startsWith('url,status,rule,')).toBe(true);
    expect(render(report, 'pretty')).not.toMatch(/\u001b\[/);
    expect(render(report, 'pretty', { color: true })).toMatch(/\u001b\[/);
  });
});

describe('renderJson', () => {
  it('is 2-space indented JSON with a trailing newline', () => {
    const text = renderJson(makeReport());
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.split('\n')[1]).toMatch(/^ {2}"tool"/);
    expect(JSON.parse(text)).toEqual(makeReport());
  });
});
