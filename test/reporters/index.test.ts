import { describe, expect, it } from 'vitest';
import { REPORT_FORMATS, isReportFormat, render } from '../../src/reporters/index.js';
import { renderJson } from '../../src/reporters/json.js';
import { makeReport } from './fixture.js';

describe('render', () => {
  it('knows every format', () => {
    expect([...REPORT_FORMATS].sort()).toEqual(['csv', 'html', 'json', 'junit', 'pretty', 'sarif']);
    expect(isReportFormat('sarif')).toBe(true);
    expect(isReportFormat('xml')).toBe(false);
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
